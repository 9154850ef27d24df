// taxline admin page: the running config from GET /api/v1/config (admin or
// auditor token, typed once and kept in sessionStorage), read-only, and
// the monthly report download (fetch with the bearer header, then a Blob).
(() => {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const store = window.sessionStorage;
  const TOKEN = 'taxline.admin.token';

  const channelNames = { phone: '电话', chat: '在线', message: '留言', visit: '上门' };
  const roleNames = { agent: '坐席', supervisor: '班长', admin: '管理员', auditor: '审计员' };
  const mixingNames = { call_blocks_chat: '通话时不接新会话', exclusive: '电话与会话互斥', independent: '互不影响' };
  const strategyNames = { longest_idle: '最久空闲优先', round_robin: '轮询', fewest_handled: '接待最少优先', skill_level: '技能等级优先' };
  const dayNames = { mon: '周一', tue: '周二', wed: '周三', thu: '周四', fri: '周五', sat: '周六', sun: '周日' };

  let toastTimer = 0;
  function toast(text) {
    const t = $('toast');
    t.textContent = text;
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, 4000);
  }

  function showLogin(msg) {
    $('admin').hidden = true;
    $('login-form').hidden = false;
    $('login-error').textContent = msg || '';
    $('login-error').hidden = !msg;
  }

  function td(text) {
    const c = document.createElement('td');
    c.textContent = text === undefined || text === null || text === '' ? '—' : String(text);
    return c;
  }

  function rows(id, items, cells) {
    const body = $(id).querySelector('tbody');
    body.textContent = '';
    for (const it of items || []) {
      const tr = document.createElement('tr');
      for (const v of cells(it)) tr.appendChild(td(v));
      body.appendChild(tr);
    }
  }

  function list(a, names) {
    return (a || []).map((x) => (names && names[x]) || x).join('、');
  }

  function windows(h) {
    if (h.always) return '全天候';
    return (h.weekly || []).map((w) => (w.days || []).map((d) => dayNames[d] || d).join('') + ' ' + w.from + '–' + w.to).join('；');
  }

  function render(c) {
    $('source').textContent = c.path ? '配置文件 ' + c.path : '内置演示配置';
    rows('server', [
      ['HTTP 地址', c.server.http], ['SIP 地址', c.server.sip], ['数据目录', c.server.data], ['时区', c.server.timezone],
    ], (r) => r);
    // The server table is key/value: the first cell is a header.
    for (const tr of $('server').querySelectorAll('tr')) {
      const th = document.createElement('th');
      th.textContent = tr.firstChild.textContent;
      tr.replaceChild(th, tr.firstChild);
    }
    rows('queues', c.queues, (q) => [q.name, list(q.channels, channelNames), strategyNames[q.strategy] || q.strategy,
      q.hours, q.chat_hours, q.max_wait || '不限', q.max_length || '不限', q.overflow, q.wrapup || '0', q.announce_interval]);
    rows('hours', Object.keys(c.hours || {}).sort().map((k) => [k, c.hours[k]]), ([k, h]) => [k, windows(h),
      h.always ? '—' : (h.holidays === 'closed' ? '节假日休息' : h.holidays)]);
    const cal = c.calendar || {};
    const hol = cal.holidays || [];
    const work = cal.workdays || [];
    $('calendar').textContent = '日历：' + (list(cal.files) || '内置') + '；节假日 ' + hol.length + ' 天，调休上班 ' + work.length + ' 天';
    $('calendar').title = '节假日：' + list(hol) + '\n调休上班：' + list(work);
    rows('agents', c.agents, (a) => [a.id, a.name, list(a.queues),
      Object.entries(a.skills || {}).map(([k, v]) => k + ' ' + v).join('、'), a.max_chats, mixingNames[a.mixing] || a.mixing]);
    rows('rules', c.rules, (r) => [r.rule, r.label, r.value, r.key]);
    rows('topics', c.topics, (t) => [t.name, t.label, t.queue]);
    rows('canned', c.canned, (t) => [t.title, t.text]);
    const ul = $('scope');
    ul.textContent = '';
    for (const r of c.scope_reasons || []) {
      const li = document.createElement('li');
      li.textContent = r;
      ul.appendChild(li);
    }
    rows('tokens', c.tokens, (t) => [t.name, roleNames[t.role] || t.role, t.agent]);
    rows('trunks', c.trunks, (t) => [t.name, list(t.sources),
      Object.entries(t.routes || {}).map(([k, v]) => (k === '*' ? '任意号码' : k) + ' → ' + v).join('；'),
      t.transfer, t.auth ? '需要（凭据不显示）' : '按来源地址']);
  }

  async function load() {
    const tok = store.getItem(TOKEN);
    if (!tok) {
      showLogin('');
      return;
    }
    let r;
    try {
      r = await fetch('/api/v1/config', { headers: { Authorization: 'Bearer ' + tok }, cache: 'no-store' });
    } catch (e) {
      toast('无法连接服务器');
      return;
    }
    if (r.status === 401 || r.status === 403) {
      store.removeItem(TOKEN);
      showLogin(r.status === 401 ? '令牌无效，请重新输入。' : '该令牌无权查看配置（需要管理员或审计员）。');
      return;
    }
    if (!r.ok) {
      toast('读取配置失败：HTTP ' + r.status);
      return;
    }
    render(await r.json());
    $('login-form').hidden = true;
    $('admin').hidden = false;
  }

  async function download(format) {
    const month = $('month').value;
    if (!/^\d{4}-\d{2}$/.test(month)) {
      toast('请选择月份');
      return;
    }
    const tok = store.getItem(TOKEN);
    $('report-status').textContent = '生成中…';
    try {
      const r = await fetch('/api/v1/reports/monthly?month=' + month + '&format=' + format,
        { headers: { Authorization: 'Bearer ' + tok }, cache: 'no-store' });
      if (!r.ok) {
        let msg = 'HTTP ' + r.status;
        try { msg = (await r.json()).error || msg; } catch (e) { /* not JSON */ }
        $('report-status').textContent = '下载失败：' + msg;
        return;
      }
      const blob = await r.blob();
      const a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = 'taxline-' + month + '.' + format;
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
      $('report-status').textContent = '已下载 ' + a.download + '（' + blob.size + ' 字节）';
    } catch (e) {
      $('report-status').textContent = '下载失败：无法连接服务器';
    }
  }

  // The previous month: the Art. 17 report is due by the 5th.
  const d = new Date();
  d.setDate(1);
  d.setMonth(d.getMonth() - 1);
  $('month').value = d.getFullYear() + '-' + String(d.getMonth() + 1).padStart(2, '0');

  $('login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const tok = $('token').value.trim();
    if (!tok) return;
    store.setItem(TOKEN, tok);
    $('token').value = '';
    load();
  });
  $('reload').onclick = load;
  $('logout').onclick = () => { store.removeItem(TOKEN); showLogin(''); };
  $('download-xlsx').onclick = () => download('xlsx');
  $('download-csv').onclick = () => download('csv');
  $('download-json').onclick = () => download('json');
  load();
})();
