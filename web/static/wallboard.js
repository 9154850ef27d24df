// taxline wallboard: polls GET /api/v1/stats/today with a supervisor,
// admin or auditor bearer token (typed once, kept in sessionStorage).
(() => {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const store = window.sessionStorage;
  const TOKEN = 'taxline.wallboard.token';
  const params = new URLSearchParams(location.search);
  const every = Math.max(500, Number(params.get('poll')) || 3000);

  const stateNames = { available: '空闲', ringing: '振铃', busy: '服务中', wrap_up: '整理', break: '小休', offline: '离线' };
  let timer = 0;
  let last = null;
  let gen = 0; // a new login starts a new polling loop; older loops stop
  let zone; // the service's time zone (config server.timezone), once known

  function clock(d) {
    try {
      return d.toLocaleTimeString('zh-CN', { hour12: false, timeZone: zone });
    } catch (e) {
      return d.toLocaleTimeString('zh-CN', { hour12: false });
    }
  }

  function showLogin(msg) {
    clearTimeout(timer);
    $('board').hidden = true;
    $('login-form').hidden = false;
    $('login-error').textContent = msg || '';
    $('login-error').hidden = !msg;
    $('token').focus();
  }

  function showBoard() {
    $('login-form').hidden = true;
    $('board').hidden = false;
  }

  function pct(r) {
    if (!r || !r.defined) return '—';
    return (r.value * 100).toFixed(1) + '%';
  }

  function mmss(sec) {
    sec = Math.max(0, Math.floor(sec));
    const h = Math.floor(sec / 3600);
    const m = Math.floor((sec % 3600) / 60);
    const s = sec % 60;
    const two = (n) => String(n).padStart(2, '0');
    return h ? h + ':' + two(m) + ':' + two(s) : two(m) + ':' + two(s);
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function renderQueues(st) {
    const box = $('queues');
    box.textContent = '';
    const warn = (st.limits && st.limits.first_response) || 30;
    const alarm = (st.limits && st.limits.answer_target) || 60;
    for (const q of st.queues || []) {
      const d = el('div', 'queue');
      d.dataset.queue = q.name;
      if (q.waiting > 0 && q.longest_wait >= alarm) d.classList.add('alarm');
      else if (q.waiting > 0 && q.longest_wait >= warn) d.classList.add('warn');
      d.appendChild(el('div', 'name', q.name));
      const big = el('div', 'big');
      const w = el('div');
      w.append(el('b', 'waiting', String(q.waiting)), el('span', '', '排队等待'));
      const l = el('div');
      l.append(el('b', 'longest', q.waiting ? mmss(q.longest_wait) : '00:00'), el('span', '', '最长等待'));
      big.append(w, l);
      d.appendChild(big);
      d.appendChild(el('div', 'small',
        '可接电话 ' + q.available_voice + ' · 可接在线 ' + q.available_text + ' · 已登录 ' + q.logged_in +
        ' · 电话' + (q.phone_open ? '服务中' : '已下班') + ' · 在线' + (q.chat_open ? '服务中' : '已关闭')));
      box.appendChild(d);
    }
  }

  function renderTiles(st) {
    for (const t of document.querySelectorAll('#live .tile')) {
      t.querySelector('.n').textContent = (st.live && st.live[t.dataset.channel]) || 0;
    }
    for (const t of document.querySelectorAll('#states .tile')) {
      t.querySelector('.n').textContent = (st.agent_states && st.agent_states[t.dataset.state]) || 0;
    }
    const reasons = Object.entries(st.breaks || {}).map(([r, n]) => r + ' ' + n).join('，');
    $('breaks').textContent = reasons;
  }

  function renderTargets(st) {
    const lim = st.limits || {};
    const labels = {
      P2: '人工接通率（P2）',
      P3: Math.round(lim.answer_target || 60) + '秒人工接通率（P3）',
      C2: '在线' + Math.round(lim.first_response || 30) + '秒首次响应（C2）',
    };
    for (const g of st.targets || []) {
      const t = $('t-' + g.rule);
      if (!t) continue;
      t.className = 'tile target ' + g.verdict;
      t.querySelector('.label').textContent = labels[g.rule] || g.rule;
      t.querySelector('.n').textContent = pct(g.value);
      const verdict = { met: '达标', missed: '未达标', no_data: '暂无数据' }[g.verdict] || '';
      t.querySelector('.goal').textContent = '目标 ≥ ' + Math.round(g.target * 100) + '% · ' + verdict +
        (g.value && g.value.den ? '（' + g.value.num + ' / ' + g.value.den + '）' : '');
    }
    $('abandoned').querySelector('.n').textContent = st.short_abandoned + ' / ' + st.long_abandoned;
    $('abandoned').querySelector('.sub').textContent = '短时放弃（' + Math.round(lim.short_abandon || 5) + '秒内）不计入接通率';
    const sat = (st.figures && st.figures.satisfaction) || { rate: {}, rated: 0, satisfied: 0 };
    $('satisfaction').querySelector('.n').textContent = pct(sat.rate);
    $('satisfaction').querySelector('.sub').textContent = '评价 ' + sat.rated + ' · 满意 ' + sat.satisfied;
    const m = st.messages || { overdue: 0, open: 0, received: 0 };
    const o = $('overdue');
    o.className = 'tile ' + (m.overdue > 0 ? 'missed' : 'met');
    o.querySelector('.n').textContent = m.overdue;
    o.querySelector('.sub').textContent = '待办 ' + m.open + ' · 今日新留言 ' + m.received;
    const f = st.figures || { phone: {}, chat: {} };
    $('volume').textContent = '今日来电 ' + (f.phone.offered || 0) + '，接通 ' + (f.phone.answered || 0) +
      '；在线咨询 ' + (f.chat.offered || 0) + '，接入 ' + (f.chat.answered || 0) +
      '；峰值并发 ' + (f.peak_concurrency || 0);
    $('day-note').textContent = st.date + '（' + st.timezone + '）';
  }

  function renderAgents(st) {
    const body = $('agents').querySelector('tbody');
    body.textContent = '';
    const now = Date.now();
    for (const a of st.agents || []) {
      const tr = el('tr');
      tr.dataset.agent = a.id;
      const state = el('td', 'state');
      let label = stateNames[a.state] || a.state;
      if (a.state === 'break' && a.reason) label += '（' + a.reason + '）';
      state.appendChild(el('span', a.state, label));
      const since = Date.parse(a.since);
      const dur = since > 0 && new Date(a.since).getUTCFullYear() > 1 ? mmss((now - since) / 1000) : '—';
      tr.append(el('td', '', a.id), el('td', '', a.name || ''), state, el('td', '', dur),
        el('td', '', a.voice ? '已登录' : '—'), el('td', '', a.text ? '已登录' : '—'),
        el('td', '', String(a.calls || 0)), el('td', '', String(a.chats || 0)));
      body.appendChild(tr);
    }
  }

  function render(st) {
    last = st;
    zone = st.timezone || undefined;
    renderQueues(st);
    renderTiles(st);
    renderTargets(st);
    renderAgents(st);
    $('date').textContent = st.date;
  }

  async function poll() {
    const mine = ++gen;
    const tok = store.getItem(TOKEN);
    if (!tok) {
      showLogin('');
      return;
    }
    try {
      const r = await fetch('/api/v1/stats/today', { headers: { Authorization: 'Bearer ' + tok }, cache: 'no-store' });
      if (mine !== gen) return;
      if (r.status === 401 || r.status === 403) {
        store.removeItem(TOKEN);
        showLogin(r.status === 401 ? '令牌无效，请重新输入。' : '该令牌无权查看大屏（需要班长、管理员或审计员）。');
        return;
      }
      if (!r.ok) throw new Error('HTTP ' + r.status);
      const st = await r.json();
      if (mine !== gen) return;
      render(st);
      showBoard();
      $('status').textContent = '已更新 ' + clock(new Date());
      $('status').className = 'status ok';
    } catch (e) {
      if (mine !== gen) return;
      $('status').textContent = '数据获取失败，正在重试';
      $('status').className = 'status bad';
    }
    timer = setTimeout(poll, every);
  }

  function tick() {
    $('clock').textContent = clock(new Date());
    if (last) renderAgents(last);
  }

  $('login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const tok = $('token').value.trim();
    if (!tok) return;
    store.setItem(TOKEN, tok);
    $('token').value = '';
    clearTimeout(timer);
    poll();
  });
  $('logout').onclick = () => {
    store.removeItem(TOKEN);
    last = null;
    gen++;
    showLogin('');
  };
  setInterval(tick, 1000);
  tick();
  if (store.getItem(TOKEN)) poll();
  else showLogin('');
})();
