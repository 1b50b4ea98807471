// An HTTP server on a Unix domain socket (argv[2]) for tests/http_unix.rs: answers every request
// with what it saw (method, url, Host, body length), prints "ready" once listening, and exits
// when its stdin closes (the test ends) or after 30 s.
const http = require('http');
const path = process.argv[2];
const server = http.createServer((req, res) => {
  let len = 0;
  req.on('data', (d) => { len += d.length; });
  req.on('end', () => {
    res.setHeader('x-served-by', 'node');
    res.statusCode = req.url === '/teapot' ? 418 : 200;
    res.end(`${req.method} ${req.url} host=${req.headers.host} len=${len}`);
  });
});
server.listen(path, () => console.log('ready'));
process.stdin.on('end', () => server.close());
process.stdin.resume();
setTimeout(() => process.exit(1), 30000).unref();
