// taxline agent desk: speaks protocol v1 of docs/CHAT.md over /ws/agent.
// One desk for chats now and calls later (the phone joins #phone-slot).
(() => {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const store = window.sessionStorage;
  const TOKEN = 'taxline.desk.token';
  // The API bearer token from POST /api/v1/login, for the messages tab.
  const API_TOKEN = 'taxline.desk.api';
  const MESSAGES = 'messages'; // the messages tab's id in `active`

  let ws = null;
  let retry = 0;
  let hello = { scope_reasons: [], canned: [], queues: [] };
  // Canned replies [{title, text}] from logged_in (chat.canned); a server
  // that sends only hello.canned (texts) gets titles from the texts.
  let canned = [];
  let limits = { max_image_bytes: 2 << 20, image_types: ['image/png', 'image/jpeg'] };
  let loggedIn = false;
  let active = '';
  const chats = new Map(); // chat id → {panel, tab, seqs, left}
  const offers = new Map(); // chat id → {el, timer}

  const stateNames = { available: '就绪', busy: '忙碌', ringing: '振铃', wrap_up: '整理', break: '小休', offline: '离线' };

  let toastTimer = 0;
  function toast(text) {
    const t = $('toast');
    t.textContent = text;
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, 4000);
  }

  function url() {
    return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws/agent';
  }

  function connect() {
    ws = new WebSocket(url());
    ws.onopen = () => { retry = 0; };
    ws.onmessage = (e) => handle(JSON.parse(e.data));
    ws.onclose = (e) => {
      if (e.reason) toast('连接关闭：' + e.reason);
      if (e.code === 1008 && e.reason === 'logged in on another desk') {
        store.removeItem(TOKEN);
        return;
      }
      setTimeout(connect, Math.min(10000, 500 * 2 ** retry++));
    };
  }

  function send(f) {
    f.v = 1;
    if (ws && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify(f));
      return true;
    }
    toast('连接中断，请稍候重试');
    return false;
  }

  function newID() {
    return 'a' + Date.now().toString(36) + Math.random().toString(36).slice(2, 8);
  }

  function time(ms) {
    return new Date(ms || Date.now()).toLocaleTimeString('zh-CN', { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  }

  function option(sel, value, label) {
    const o = document.createElement('option');
    o.value = value;
    o.textContent = label;
    sel.appendChild(o);
  }

  function describe(f) {
    const tp = f.taxpayer || {};
    const parts = ['队列 ' + (f.queue || '')];
    if (f.topic) parts.push('类别 ' + f.topic);
    if (tp.name) parts.push('姓名 ' + tp.name);
    if (tp.id) parts.push('识别号 ' + tp.id);
    if (tp.phone) parts.push('电话 ' + tp.phone);
    return parts.join(' · ');
  }

  // Offers.
  function addOffer(f) {
    removeOffer(f.chat);
    const el = document.createElement('div');
    el.className = 'offer';
    el.dataset.chat = f.chat;
    const text = document.createElement('span');
    let left = Math.round((f.timeout_ms || 30000) / 1000);
    text.textContent = '新咨询：' + describe(f);
    const count = document.createElement('b');
    count.textContent = left + ' 秒';
    const accept = document.createElement('button');
    accept.className = 'accept primary';
    accept.textContent = '接受';
    accept.onclick = () => send({ type: 'accept', chat: f.chat });
    const decline = document.createElement('button');
    decline.className = 'decline';
    decline.textContent = '拒绝';
    decline.onclick = () => { send({ type: 'decline', chat: f.chat }); removeOffer(f.chat); };
    el.append(text, count, accept, decline);
    $('offers').appendChild(el);
    const timer = setInterval(() => {
      left = Math.max(0, left - 1);
      count.textContent = left + ' 秒';
    }, 1000);
    offers.set(f.chat, { el, timer });
  }

  function removeOffer(id) {
    const o = offers.get(id);
    if (!o) return;
    clearInterval(o.timer);
    o.el.remove();
    offers.delete(id);
  }

  // Chats.
  function select(id) {
    active = id;
    for (const [cid, c] of chats) {
      c.panel.hidden = cid !== id;
      c.tab.classList.toggle('active', cid === id);
      if (cid === id) c.tab.classList.remove('alert');
    }
    const m = id === MESSAGES;
    $('messages').hidden = !m;
    $('tab-messages').classList.toggle('active', m);
    $('empty').hidden = m || chats.size > 0;
  }

  function openChat(f) {
    let c = chats.get(f.chat);
    if (!c) {
      const panel = $('chat-template').content.firstElementChild.cloneNode(true);
      panel.dataset.chat = f.chat;
      const tab = document.createElement('button');
      tab.className = 'tab';
      tab.type = 'button';
      tab.dataset.chat = f.chat;
      tab.textContent = (f.taxpayer && f.taxpayer.name) || ('会话 ' + f.chat.slice(-4));
      tab.onclick = () => select(f.chat);
      $('tabs').appendChild(tab);
      $('chats').appendChild(panel);
      c = { panel, tab, seqs: new Set(), left: false };
      chats.set(f.chat, c);
      wire(f.chat, c);
    }
    c.panel.querySelector('.info').textContent = describe(f);
    c.panel.querySelector('.msgs').innerHTML = '';
    c.seqs.clear();
    for (const m of f.msgs || []) addMsg(f.chat, m);
    if (!active || !chats.has(active)) select(f.chat);
    else select(active);
  }

  function wire(id, c) {
    const p = c.panel;
    const pick = p.querySelector('.canned');
    for (const c of canned) option(pick, c.text, c.title || c.text);
    pick.onchange = () => {
      if (pick.value) {
        const r = p.querySelector('.reply');
        r.value = r.value ? r.value + pick.value : pick.value;
        r.focus();
      }
      pick.value = '';
    };
    const image = p.querySelector('.image');
    image.accept = (limits.image_types || []).join(',');
    image.addEventListener('change', () => {
      const file = image.files[0];
      image.value = '';
      if (!file) return;
      if (!(limits.image_types || []).includes(file.type)) {
        toast('仅支持 ' + (limits.image_types || []).map((t) => t.replace('image/', '').toUpperCase()).join('、') + ' 格式的图片');
        return;
      }
      if (file.size > limits.max_image_bytes) {
        toast('图片不能超过 ' + Math.floor(limits.max_image_bytes / 1024 / 1024) + ' MB');
        return;
      }
      const rd = new FileReader();
      rd.onload = () => send({ type: 'send', chat: id, client_id: newID(), image: rd.result });
      rd.readAsDataURL(file);
    });
    const target = p.querySelector('.transfer-target');
    for (const q of hello.queues || []) option(target, q.name, q.name);
    const scope = p.querySelector('.scope-reason');
    for (const r of hello.scope_reasons || []) option(scope, r, r);
    const disp = p.querySelector('.disposition');
    disp.onchange = () => { scope.hidden = disp.value !== 'out_of_scope'; };

    const reply = p.querySelector('.reply');
    let typing = false;
    let typingTimer = 0;
    const stopTyping = () => {
      clearTimeout(typingTimer);
      if (typing) {
        typing = false;
        send({ type: 'typing', chat: id, on: false });
      }
    };
    const sendReply = () => {
      const text = reply.value.trim();
      if (!text) return;
      stopTyping();
      if (send({ type: 'send', chat: id, client_id: newID(), text: text })) reply.value = '';
    };
    p.querySelector('.send').onclick = sendReply;
    reply.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        sendReply();
      }
    });
    reply.addEventListener('input', () => {
      if (!typing) {
        typing = true;
        send({ type: 'typing', chat: id, on: true });
      }
      clearTimeout(typingTimer);
      typingTimer = setTimeout(stopTyping, 3000);
    });
    p.querySelector('.transfer').onclick = () => {
      if (target.value) send({ type: 'transfer', chat: id, target: target.value });
    };
    p.querySelector('.end').onclick = () => {
      const f = { type: 'end', chat: id, disposition: disp.value };
      if (disp.value === 'out_of_scope') f.scope_reason = scope.value;
      send(f);
    };
  }

  function addMsg(id, m) {
    const c = chats.get(id);
    if (!c || c.seqs.has(m.seq)) return;
    c.seqs.add(m.seq);
    const li = document.createElement('li');
    li.className = 'msg ' + (m.kind === 'choice' ? 'choice' : m.from);
    if (m.image) {
      const img = document.createElement('img');
      img.src = m.image;
      img.alt = '截图';
      li.appendChild(img);
    }
    if (m.text) li.appendChild(document.createTextNode(m.text));
    const t = document.createElement('span');
    t.className = 'time';
    t.textContent = ({ taxpayer: '纳税人', agent: '我', system: '系统' }[m.from] || '') + ' ' + time(m.at);
    li.appendChild(t);
    const list = c.panel.querySelector('.msgs');
    list.appendChild(li);
    list.scrollTop = list.scrollHeight;
    if (m.from === 'agent') c.panel.querySelector('.prompt').hidden = true;
    if (m.from === 'taxpayer' && id !== active) c.tab.classList.add('alert');
  }

  function closeChat(id, why) {
    const c = chats.get(id);
    if (!c) return;
    c.panel.remove();
    c.tab.remove();
    chats.delete(id);
    if (active === id) active = chats.size ? chats.keys().next().value : '';
    select(active);
    toast(why);
  }

  function handle(f) {
    switch (f.type) {
      case 'hello':
        hello = f;
        if (f.limits) limits = f.limits;
        if (!canned.length) canned = (f.canned || []).map((t) => ({ title: t.length > 14 ? t.slice(0, 14) + '…' : t, text: t }));
        const tok = store.getItem(TOKEN);
        if (tok) send({ type: 'login', token: tok });
        break;
      case 'logged_in':
        loggedIn = true;
        if (f.canned_replies && f.canned_replies.length) canned = f.canned_replies;
        store.setItem(TOKEN, f.token);
        $('login-form').hidden = true;
        $('desk').hidden = false;
        $('login-error').hidden = true;
        $('me').textContent = '工号 ' + f.agent + (f.name ? ' ' + f.name : '');
        me = f.agent;
        refreshTickets();
        break;
      case 'agent': {
        const s = $('state');
        const label = f.status === 'break' ? '小休' + (f.reason ? '（' + f.reason + '）' : '') : (stateNames[f.state] || f.state);
        s.textContent = label + ' · 会话 ' + (f.chats || 0) + '/' + (f.max_chats || 0);
        s.className = 'badge ' + (f.status === 'break' ? 'break' : f.state);
        break;
      }
      case 'queues': {
        const box = $('queues');
        box.innerHTML = '';
        for (const q of f.queues || []) {
          const d = document.createElement('div');
          d.className = 'q' + (q.longest_wait >= 30 ? ' warn' : '');
          d.dataset.queue = q.name;
          d.innerHTML = '';
          d.append(q.name + ' 等待 ');
          const w = document.createElement('b');
          w.className = 'waiting';
          w.textContent = q.waiting;
          d.append(w, ' 人 · 最长 ');
          const l = document.createElement('b');
          l.className = 'longest';
          l.textContent = q.longest_wait + ' 秒';
          d.append(l);
          box.appendChild(d);
        }
        break;
      }
      case 'offer':
        addOffer(f);
        break;
      case 'offer_withdrawn':
        removeOffer(f.chat);
        break;
      case 'chat':
        removeOffer(f.chat);
        openChat(f);
        break;
      case 'msg':
        addMsg(f.chat, f);
        break;
      case 'typing': {
        const c = chats.get(f.chat);
        if (c) c.panel.querySelector('.typing').hidden = !f.on;
        break;
      }
      case 'prompt': {
        const c = chats.get(f.chat);
        if (!c) break;
        const p = c.panel.querySelector('.prompt');
        p.textContent = f.text;
        p.hidden = false;
        c.tab.classList.add('alert');
        break;
      }
      case 'taxpayer_left': {
        const c = chats.get(f.chat);
        if (!c) break;
        c.left = true;
        const p = c.panel.querySelector('.prompt');
        p.textContent = '纳税人已结束会话，请选择处理结果后结束。';
        p.hidden = false;
        c.panel.querySelector('.compose').hidden = true;
        break;
      }
      case 'closed':
        closeChat(f.chat, f.reason === 'transferred' ? '会话已转接' : '会话已结束');
        break;
      case 'rated':
        toast('纳税人评分：' + f.score + ' 分' + (f.comment ? '，' + f.comment : ''));
        break;
      case 'error':
        if (f.code === 'bad_login') {
          store.removeItem(TOKEN);
          store.removeItem(API_TOKEN);
          $('login-error').textContent = f.text;
          $('login-error').hidden = false;
          $('login-form').hidden = false;
          $('desk').hidden = true;
          break;
        }
        toast(f.text || f.code);
        break;
    }
  }

  // Messages (M3): voicemail, web messages and follow-ups, from the REST
  // API (docs/PAGES.md). The list is polled; countdowns tick every second.
  let me = '';
  const tickets = new Map(); // ticket id → {el, t, blob}
  let pollTimer = 0;

  const kindNames = { voicemail: '语音留言', web: '网上留言', follow_up: '稍后答复' };

  async function api(method, path, body) {
    const tok = store.getItem(API_TOKEN);
    if (!tok) throw new Error('留言功能未登录，请刷新页面后重新登录');
    const init = { method, headers: { Authorization: 'Bearer ' + tok } };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const r = await fetch(path, init);
    if (r.status === 401) {
      store.removeItem(API_TOKEN);
      throw new Error('登录已过期，请刷新页面后重新登录');
    }
    return r;
  }

  async function apiLogin(agent, password) {
    try {
      const r = await fetch('/api/v1/login', {
        method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ agent, password }),
      });
      if (!r.ok) return;
      const j = await r.json();
      store.setItem(API_TOKEN, j.token);
      refreshTickets();
    } catch (e) {
      $('msg-status').textContent = '留言列表暂不可用';
    }
  }

  function when(iso) {
    return new Date(iso).toLocaleString('zh-CN', { month: 'numeric', day: 'numeric', hour: '2-digit', minute: '2-digit' });
  }

  function span(ms) {
    const m = Math.floor(Math.abs(ms) / 60000);
    const d = Math.floor(m / 1440);
    const h = Math.floor((m % 1440) / 60);
    if (d > 0) return d + '天' + h + '小时';
    if (h > 0) return h + '小时' + (m % 60) + '分';
    return (m % 60) + '分' + Math.floor((Math.abs(ms) % 60000) / 1000) + '秒';
  }

  // tick updates every countdown; a deadline past is red.
  function tick() {
    const now = Date.now();
    let overdue = 0;
    for (const { el, t } of tickets.values()) {
      let late = t.overdue;
      for (const d of el.querySelectorAll('.deadline')) {
        const left = d.querySelector('.left');
        if (d.dataset.done) {
          d.classList.remove('overdue');
          d.classList.add('done');
          left.textContent = d.dataset.done;
          continue;
        }
        const ms = Date.parse(d.dataset.at) - now;
        d.classList.toggle('overdue', ms < 0);
        left.textContent = (ms < 0 ? '已超时 ' : '剩余 ') + span(ms);
        if (ms < 0) late = true;
      }
      el.classList.toggle('overdue', late);
      if (late) overdue++;
    }
    const c = $('msg-count');
    c.textContent = tickets.size ? String(tickets.size) : '';
    c.classList.toggle('overdue', overdue > 0);
  }

  function renderTicket(t) {
    let item = tickets.get(t.id);
    if (!item) {
      const el = $('ticket-template').content.firstElementChild.cloneNode(true);
      el.dataset.ticket = t.id;
      item = { el, t, blob: '' };
      tickets.set(t.id, item);
      wireTicket(item);
    }
    item.t = t;
    const el = item.el;
    const mine = t.agent === me;
    el.classList.toggle('unowned', !t.agent);
    el.classList.toggle('mine', mine);
    el.querySelector('.kind').textContent = kindNames[t.kind] || '留言';
    el.querySelector('.owner').textContent = mine ? '我的' : (t.agent ? '坐席 ' + t.agent : '待认领');
    const who = ['队列 ' + t.queue];
    if (t.topic) who.push('类别 ' + t.topic);
    if (t.taxpayer_name) who.push('姓名 ' + t.taxpayer_name);
    if (t.taxpayer_id) who.push('识别号 ' + t.taxpayer_id);
    if (t.taxpayer_phone) who.push('电话 ' + t.taxpayer_phone);
    if (t.parent && t.kind === 'follow_up') who.push('来自会话 …' + t.parent.slice(-6));
    who.push('留言时间 ' + when(t.offered_at));
    el.querySelector('.who').textContent = who.join(' · ');
    const ack = el.querySelector('.deadline.ack-by');
    ack.dataset.at = t.ack_by;
    ack.querySelector('.at').textContent = when(t.ack_by);
    if (t.acknowledged_at) ack.dataset.done = '已认领 ' + when(t.acknowledged_at);
    else delete ack.dataset.done;
    const ans = el.querySelector('.deadline.answer-by');
    ans.dataset.at = t.answer_by;
    ans.querySelector('.at').textContent = when(t.answer_by);

    // The message is shown once the ticket is the agent's (claimed).
    const body = el.querySelector('.t-body');
    body.hidden = t.masked || (!t.text && !t.recording);
    const text = el.querySelector('.text');
    text.hidden = !t.text;
    text.textContent = t.text || '';
    el.querySelector('.voice').hidden = !t.recording;
    el.querySelector('.claim').hidden = !!t.acknowledged_at;
    el.querySelector('.claim').textContent = t.agent ? '确认已阅' : '认领';
    el.querySelector('.answer-box').hidden = !mine || !t.acknowledged_at;
  }

  function wireTicket(item) {
    const el = item.el;
    const scope = el.querySelector('.scope-reason');
    for (const r of hello.scope_reasons || []) option(scope, r, r);
    const disp = el.querySelector('.disposition');
    disp.onchange = () => { scope.hidden = disp.value !== 'out_of_scope'; };
    el.querySelector('.claim').onclick = () => claim(item);
    el.querySelector('.listen').onclick = () => listen(item);
    el.querySelector('button.answer').onclick = () => answer(item, disp.value, scope.value);
  }

  function dropTicket(id) {
    const item = tickets.get(id);
    if (!item) return;
    if (item.blob) URL.revokeObjectURL(item.blob);
    item.el.remove();
    tickets.delete(id);
  }

  async function refreshTickets() {
    clearTimeout(pollTimer);
    if (!loggedIn || !store.getItem(API_TOKEN)) return;
    pollTimer = setTimeout(refreshTickets, 15000);
    try {
      const r = await api('GET', '/api/v1/tickets');
      if (!r.ok) throw new Error('留言列表读取失败（' + r.status + '）');
      const list = await r.json();
      const seen = new Set();
      const ul = $('tickets');
      for (const t of list) {
        seen.add(t.id);
        renderTicket(t);
        ul.appendChild(tickets.get(t.id).el); // keeps the server's order: nearest deadline first
      }
      for (const id of [...tickets.keys()]) if (!seen.has(id)) dropTicket(id);
      $('msg-empty').hidden = tickets.size > 0;
      $('msg-status').textContent = '更新于 ' + time();
      tick();
    } catch (e) {
      $('msg-status').textContent = e.message;
    }
  }

  async function claim(item) {
    try {
      const r = await api('POST', '/api/v1/tickets/' + item.t.id + '/ack');
      if (r.status === 403) throw new Error('该留言已由其他坐席认领，或不属于您的队列');
      if (r.status === 409) throw new Error('该留言已处理');
      if (!r.ok) throw new Error('认领失败（' + r.status + '）');
      renderTicket(await r.json());
      tick();
      toast('已认领，请在回复时限内答复纳税人');
    } catch (e) {
      toast(e.message);
      refreshTickets();
    }
  }

  // listen fetches the voicemail with the bearer token (an <audio src>
  // cannot send it) and plays it from a Blob URL. Each fetch is audited.
  async function listen(item) {
    const audio = item.el.querySelector('.player');
    try {
      if (!item.blob) {
        const r = await api('GET', item.t.recording);
        if (!r.ok) throw new Error('留言录音读取失败（' + r.status + '）');
        item.blob = URL.createObjectURL(await r.blob());
        audio.src = item.blob;
      }
      audio.hidden = false;
      await audio.play().catch(() => {});
    } catch (e) {
      toast(e.message);
    }
  }

  async function answer(item, disposition, scopeReason) {
    const body = {};
    if (disposition === 'out_of_scope') {
      if (!scopeReason) { toast('请选择不属于服务范围的原因'); return; }
      body.scope_reason = scopeReason;
    }
    try {
      const r = await api('POST', '/api/v1/tickets/' + item.t.id + '/answer?disposition=' + encodeURIComponent(disposition), body);
      if (r.status === 403) throw new Error('只能回复自己认领的留言');
      if (r.status === 409) throw new Error('请先认领该留言，或该留言已处理');
      if (!r.ok) throw new Error('提交失败（' + r.status + '）');
      dropTicket(item.t.id);
      $('msg-empty').hidden = tickets.size > 0;
      tick();
      toast('已标记为已回复');
    } catch (e) {
      toast(e.message);
    }
  }

  $('tab-messages').onclick = () => { select(MESSAGES); refreshTickets(); };
  $('msg-refresh').onclick = refreshTickets;
  setInterval(tick, 1000);

  $('login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const agent = $('agent').value.trim();
    const password = $('password').value;
    send({ type: 'login', agent, password });
    apiLogin(agent, password);
    $('password').value = '';
  });
  $('status-available').onclick = () => send({ type: 'status', status: 'available' });
  $('status-break').onclick = () => send({ type: 'status', status: 'break', reason: $('break-reason').value });

  connect();
})();
