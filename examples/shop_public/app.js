// The shop's front-end: log in (a session cookie), list and add products. No framework.
const $ = (id) => document.getElementById(id);
const api = (path, body) => fetch(path, body === undefined ? {} : {
  method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
}).then(async (r) => ({ ok: r.ok, data: await r.json().catch(() => null) }));

async function refresh() {
  const { data } = await api('/api/products');
  $('products').replaceChildren(...(data || []).map((p) => {
    const li = document.createElement('li');
    li.textContent = `${p.name}: ${p.price.toFixed(2)}`;
    return li;
  }));
}
$('login').onsubmit = async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  const { ok, data } = await api('/api/login', { user: f.get('user'), password: f.get('password') });
  $('who').textContent = ok ? `signed in as ${data.user}` : data.error;
};
$('add').onsubmit = async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  const { ok, data } = await api('/api/products', { name: f.get('name'), price: Number(f.get('price')) });
  if (!ok) alert(data.error);
  refresh();
};
refresh();
