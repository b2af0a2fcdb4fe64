// Records every request the page makes through `fetch` (Gradio's client sends all of its traffic so, its event
// streams included): when it started and ended (page time, ms), what it sent (text, or a form's fields with its files
// base64) and what came back (text; an event stream's messages each with its time). outwit/sim/traffic.py reads
// `window.__traffic` and replays it for many visitors.
(() => {
  if (window.__traffic) return;
  const log = window.__traffic = [];
  const original = window.fetch.bind(window);
  const base64 = async (blob) => {
    const bytes = new Uint8Array(await blob.arrayBuffer());
    let text = '';
    for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(text);
  };
  const encode = async (body) => {
    if (body == null) return null;
    if (typeof body === 'string') return {text: body};
    if (body instanceof FormData) {
      const form = [];
      for (const [name, value] of body.entries()) {
        if (value instanceof Blob) {
          form.push({name, filename: value.name || 'blob', type: value.type, base64: await base64(value)});
        } else form.push({name, value});
      }
      return {form};
    }
    if (body instanceof Blob) return {base64: await base64(body), type: body.type};
    return {text: String(body)};
  };
  const messages = async (stream, entry) => {
    const reader = stream.getReader(), decoder = new TextDecoder();
    let buffer = '';
    for (;;) {
      const {done, value} = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, {stream: true});
      let cut;
      while ((cut = buffer.indexOf('\n\n')) >= 0) {
        const message = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const data = message.split('\n').filter((line) => line.startsWith('data:')).map((l) => l.slice(5)).join('');
        if (data) entry.messages.push({at: performance.now(), data: data.trim()});
      }
    }
    entry.end = performance.now();
  };
  window.fetch = async (input, init = {}) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const method = (init.method || (input instanceof Request ? input.method : 'GET')).toUpperCase();
    const entry = {url, method, headers: init.headers || null, body: await encode(init.body),
                   start: performance.now(), end: null, status: null, response: null, messages: null};
    log.push(entry);
    const response = await original(input, init);
    entry.status = response.status;
    if ((response.headers.get('content-type') || '').includes('text/event-stream') && response.body) {
      entry.messages = [];
      const [mine, theirs] = response.body.tee();
      messages(mine, entry);
      return new Response(theirs, {status: response.status, statusText: response.statusText,
                                   headers: response.headers});
    }
    response.clone().text().then((text) => { entry.response = text.length < 20000 ? text : null;
                                              entry.end = performance.now(); });
    return response;
  };
})();
