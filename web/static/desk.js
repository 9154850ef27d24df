// taxline agent desk: speaks protocol v1 of docs/CHAT.md over /ws/agent.
// One desk for chats now and calls later (the phone joins #phone-slot).
(() => {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const store = window.sessionStorage;
  const TOKEN = 'taxline.desk.token';

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
    $('empty').hidden = chats.size > 0;
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

  $('login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    send({ type: 'login', agent: $('agent').value.trim(), password: $('password').value });
    $('password').value = '';
  });
  $('status-available').onclick = () => send({ type: 'status', status: 'available' });
  $('status-break').onclick = () => send({ type: 'status', status: 'break', reason: $('break-reason').value });

  connect();
})();
