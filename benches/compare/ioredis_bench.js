// The twin of examples/redis_bench.rs for ioredis with enableAutoPipelining: --chains N
// request chains, each issuing its next command when the previous one resolved.
// Run: node benches/compare/ioredis_bench.js --port 6379 --chains 800 --ops 1000000
'use strict';
const Redis = require('ioredis');

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const port = arg('--port', 6379);
const chains = arg('--chains', 800);
const ops = arg('--ops', 1000000);

async function run(redis, get) {
  const per = Math.floor(ops / chains);
  await redis.ping();
  const start = process.hrtime.bigint();
  const chain = async () => {
    for (let i = 0; i < per; i++) {
      if (get) await redis.get('key:bench');
      else await redis.set('key:bench', 'xxx');
    }
  };
  await Promise.all(Array.from({ length: chains }, chain));
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  return (per * chains) / secs;
}

(async () => {
  const redis = new Redis({ port, host: '127.0.0.1', enableAutoPipelining: true });
  const set = await run(redis, false);
  const get = await run(redis, true);
  console.log(`ioredis ${require('ioredis/package.json').version} autopipelining: SET ${set.toFixed(0)} ops/s, GET ${get.toFixed(0)} ops/s (${chains} chains)`);
  redis.disconnect();
})();
