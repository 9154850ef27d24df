// taxline chat widget: speaks protocol v1 of docs/CHAT.md over /ws/chat.
// Resumes after a reload or a dropped network from sessionStorage, and
// re-sends messages whose echo never came (the server stores each client
// id once).
(() => {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const store = window.sessionStorage;
  const KEY = { token: 'taxline.chat.token', last: 'taxline.chat.last', pending: 'taxline.chat.pending' };

  let ws = null;
  let limits = { max_text_chars: 2000, max_image_bytes: 2 << 20, image_types: ['image/png', 'image/jpeg'] };
  let token = store.getItem(KEY.token) || '';
  let lastSeq = Number(store.getItem(KEY.last) || 0);
  let pending = JSON.parse(store.getItem(KEY.pending) || '{}');
  let retry = 0;
  let phase = 'new';
  let score = 0;
  let typingOn = false;
  let typingTimer = 0;
  const shown = new Set();

  function save() {
    store.setItem(KEY.token, token);
    store.setItem(KEY.last, String(lastSeq));
    store.setItem(KEY.pending, JSON.stringify(pending));
  }

  function status(text) { $('status').textContent = text; }

  let toastTimer = 0;
  function toast(text) {
    const t = $('toast');
    t.textContent = text;
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, 4000);
  }

  function url() {
    return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws/chat';
  }

  function connect() {
    ws = new WebSocket(url());
    ws.onopen = () => { retry = 0; };
    ws.onmessage = (e) => handle(JSON.parse(e.data));
    ws.onclose = (e) => {
      if (e.code === 1008 || e.code === 1003 || e.code === 1007 || e.code === 1009) {
        toast('连接被关闭：' + (e.reason || e.code));
      }
      if (phase === 'closed') return;
      status('连接中断，正在重连…');
      setTimeout(connect, Math.min(10000, 500 * 2 ** retry++));
    };
  }

  function send(f) {
    f.v = 1;
    if (ws && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify(f));
      return true;
    }
    return false;
  }

  function newID() {
    return 'c' + Date.now().toString(36) + Math.random().toString(36).slice(2, 8);
  }

  function show(id, on) { $(id).hidden = !on; }

  function showConversation() {
    show('start-form', false);
    show('conversation', true);
    const live = phase === 'queued' || phase === 'connected';
    show('composer', live);
  }

  function time(ms) {
    const d = ms ? new Date(ms) : new Date();
    return d.toLocaleTimeString('zh-CN', { hour: '2-digit', minute: '2-digit' });
  }

  function render(m, isPending) {
    const li = document.createElement('li');
    li.className = 'msg ' + (m.kind === 'choice' ? 'choice' : m.from) + (isPending ? ' pending' : '');
    li.dataset.seq = m.seq || '';
    if (isPending) li.id = 'p-' + m.client_id;
    if (m.image) {
      const img = document.createElement('img');
      img.src = m.image;
      img.alt = '截图';
      li.appendChild(img);
    }
    if (m.text) li.appendChild(document.createTextNode(m.text));
    const t = document.createElement('span');
    t.className = 'time';
    t.textContent = (m.from === 'agent' ? '客服 ' : '') + time(m.at);
    li.appendChild(t);
    $('msgs').appendChild(li);
    li.scrollIntoView({ block: 'end' });
  }

  function addMsg(m) {
    if (!m.seq || shown.has(m.seq)) return;
    shown.add(m.seq);
    if (m.seq > lastSeq) lastSeq = m.seq;
    if (m.from === 'taxpayer' && m.client_id) {
      delete pending[m.client_id];
      const p = $('p-' + m.client_id);
      if (p) p.remove();
    }
    save();
    render(m, false);
    if (m.kind === 'choice') show('choice', phase === 'connected');
    if (m.from === 'agent') show('choice', false);
  }

  function setPhase(p) {
    phase = p;
    showConversation();
    if (p === 'ended') {
      show('composer', false);
      show('choice', false);
      show('typing', false);
    }
  }

  function handle(f) {
    switch (f.type) {
      case 'hello':
        if (f.limits) limits = f.limits;
        $('image').accept = limits.image_types.join(',');
        $('input').maxLength = limits.max_text_chars;
        const sel = $('topic');
        sel.innerHTML = '';
        for (const t of f.topics || []) {
          const o = document.createElement('option');
          o.value = t.name;
          o.textContent = t.label;
          sel.appendChild(o);
        }
        if (token) {
          status('正在恢复会话…');
          send({ type: 'resume', token: token, last_seq: lastSeq });
        } else {
          status('请选择咨询类别');
          show('start-form', true);
        }
        break;
      case 'opened':
        token = f.token;
        save();
        setPhase(f.state === 'message' ? 'message' : f.state);
        status(f.state === 'connected' ? '客服已接入' : f.state === 'queued' ? '正在为您接入客服…' : '');
        if (f.resumed) {
          for (const cid of Object.keys(pending)) send(pending[cid]);
        }
        break;
      case 'history':
        for (const m of f.msgs || []) addMsg(m);
        break;
      case 'msg':
        addMsg(f);
        break;
      case 'ack':
        delete pending[f.client_id];
        save();
        const p = $('p-' + f.client_id);
        if (p) p.remove();
        break;
      case 'state':
        setPhase(f.state);
        if (f.state === 'queued') {
          status(f.position ? '排队中，前面还有 ' + f.position + ' 位' : '正在为您接入客服…');
        } else if (f.state === 'connected') {
          status('客服已接入');
        }
        break;
      case 'typing':
        show('typing', !!f.on);
        break;
      case 'after_hours':
        setPhase('message');
        show('composer', false);
        show('message-form', true);
        status('非服务时间');
        break;
      case 'ticket':
        show('message-form', false);
        status('已记录，待回复');
        break;
      case 'ended':
        setPhase('ended');
        status('会话已结束');
        if (!f.rated && f.reason !== 'message' && f.reason !== 'callback') show('rate-form', true);
        show('restart', true);
        break;
      case 'rated':
        show('rate-form', false);
        show('rated', true);
        break;
      case 'error':
        if (f.code === 'unknown_session') {
          token = '';
          lastSeq = 0;
          pending = {};
          save();
          show('conversation', false);
          show('start-form', true);
          status('请选择咨询类别');
          return;
        }
        if (f.client_id) {
          delete pending[f.client_id];
          save();
        }
        toast(f.text || f.code);
        break;
    }
  }

  function sendMessage(fields) {
    const f = Object.assign({ type: 'send', client_id: newID() }, fields);
    pending[f.client_id] = f;
    save();
    render({ from: 'taxpayer', kind: fields.image ? 'image' : 'text', text: fields.text, image: fields.image, client_id: f.client_id }, true);
    send(f);
  }

  $('start-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const taxpayer = { id: $('tp-id').value.trim(), name: $('tp-name').value.trim(), phone: $('tp-phone').value.trim() };
    send({ type: 'open', topic: $('topic').value, taxpayer: taxpayer });
    status('正在为您接入客服…');
  });

  function sendText() {
    const text = $('input').value.trim();
    if (!text) return;
    if (text.length > limits.max_text_chars) {
      toast('消息过长，最多 ' + limits.max_text_chars + ' 字');
      return;
    }
    $('input').value = '';
    stopTyping();
    sendMessage({ text: text });
  }
  $('send').addEventListener('click', sendText);
  $('input').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      sendText();
    }
  });

  function stopTyping() {
    clearTimeout(typingTimer);
    if (typingOn) {
      typingOn = false;
      send({ type: 'typing', on: false });
    }
  }
  $('input').addEventListener('input', () => {
    if (!typingOn && phase === 'connected') {
      typingOn = true;
      send({ type: 'typing', on: true });
    }
    clearTimeout(typingTimer);
    typingTimer = setTimeout(stopTyping, 3000);
  });

  $('image').addEventListener('change', () => {
    const file = $('image').files[0];
    $('image').value = '';
    if (!file) return;
    if (!limits.image_types.includes(file.type)) {
      toast('仅支持 PNG、JPEG 格式的截图');
      return;
    }
    if (file.size > limits.max_image_bytes) {
      toast('截图不能超过 ' + Math.floor(limits.max_image_bytes / 1024 / 1024) + ' MB');
      return;
    }
    const r = new FileReader();
    r.onload = () => sendMessage({ image: r.result });
    r.readAsDataURL(file);
  });

  $('end').addEventListener('click', () => send({ type: 'end' }));
  $('choose-wait').addEventListener('click', () => { show('choice', false); send({ type: 'choose', later: false }); });
  $('choose-later').addEventListener('click', () => { show('choice', false); send({ type: 'choose', later: true }); });

  for (const b of document.querySelectorAll('.stars button')) {
    b.addEventListener('click', () => {
      score = Number(b.dataset.score);
      for (const o of document.querySelectorAll('.stars button')) {
        o.classList.toggle('on', Number(o.dataset.score) <= score);
      }
      $('rate-submit').disabled = false;
    });
  }
  $('rate-form').addEventListener('submit', (e) => {
    e.preventDefault();
    if (score) send({ type: 'rate', score: score, comment: $('comment').value.trim() });
  });

  $('message-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const text = $('message-text').value.trim();
    if (!text) return;
    send({ type: 'leave_message', client_id: newID(), text: text, taxpayer: { phone: $('message-phone').value.trim() } });
  });

  $('restart').addEventListener('click', () => {
    token = '';
    lastSeq = 0;
    pending = {};
    save();
    phase = 'closed';
    if (ws) ws.close();
    location.reload();
  });

  connect();
})();
