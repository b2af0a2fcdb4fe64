// The page's scripts, put in its <head> once (outwit/ui/scripts.py), before Gradio's own. `window.outwit` holds what
// the page's events call (each event's `js` is a one-line call); the pen-up hold installs itself at once.
(() => {
  const outwit = window.outwit = {};

  // A Sketchpad opens with no tool selected ("select the draw tool to start"), and its own "Clear canvas" lets go of
  // the brush: the page picks it for the visitor. By states, not delays: on a busy machine (a public Space is one)
  // the editor may draw its toolbar, or take a click, or let go of the brush after a clear, late.
  const brushOf = (id) => document.querySelector(`#${id} button[aria-label="Brush"]`);
  const picked = (id) => !!brushOf(id)?.classList.contains('highlight');

  // Click the canvas's brush until the editor shows it picked, for up to `within` ms (the canvas may not be on the
  // page yet: the machine adversary's appears when its tab opens). A tool the visitor picks meanwhile is theirs.
  outwit.pickBrush = (id, within = 20000) => {
    const until = performance.now() + within;
    let theirs = false;
    const watch = (event) => { if (event.isTrusted && event.target.closest?.(`#${id} button`)) theirs = true; };
    document.addEventListener('click', watch, true);
    const attempt = () => {
      if (!theirs && !picked(id)) brushOf(id)?.click();
      if (!theirs && !picked(id) && performance.now() < until) setTimeout(attempt, 250);
      else document.removeEventListener('click', watch, true);
    };
    attempt();
  };
  outwit.selectBrush = () => ['sketchpad', 'attack-sketchpad'].forEach((id) => outwit.pickBrush(id));

  // Once a canvas is cleared, pick the brush again as soon as the editor has let go of it, however late that is.
  const afterClear = (id, within = 20000) => {
    const until = performance.now() + within;
    const check = () => {
      if (!picked(id)) outwit.pickBrush(id, until - performance.now());
      else if (performance.now() < until) setTimeout(check, 50);
    };
    check();
  };
  // Clear a canvas with the editor's own button (setting its value to None would leave no tool ready).
  outwit.clearCanvas = (id) => {
    document.querySelector(`#${id} button[aria-label="Clear canvas"]`)?.click();
    afterClear(id);
  };
  document.addEventListener('click', (event) => {  // a visitor's own click on the editor's "Clear canvas" too
    const clear = event.isTrusted && event.target.closest?.('button[aria-label="Clear canvas"]');
    const canvas = clear && clear.closest('#sketchpad, #attack-sketchpad');
    if (canvas) afterClear(canvas.id);
  }, true);

  // The quick guess (outwit/ml/strokes.py): record each brush stroke on the main canvas and, when the pen lifts, click
  // the hidden button whose client-side event asks the plain route /outwit/guess (outwit/ui/routes.py) and sets the
  // guess. Any other tool (undo, eraser, upload) switches it off until the canvas is cleared: each pen-up then asks
  // for the editor's own guess instead (the hidden #editor-guess: Gradio's /predict, which reads the canvas).
  outwit.recordStrokes = () => {
    if (window.__outwitStrokes) return;
    const state = window.__outwitStrokes = {strokes: [], current: null, off: false, width: 0, height: 0,
                                            drawing: false, forget: false};
    const canvasOf = (event) => event.target.closest && event.target.closest('#sketchpad canvas');
    const point = (event, canvas) => {
      const box = canvas.getBoundingClientRect();
      state.width = box.width; state.height = box.height;
      return [event.clientX - box.left, event.clientY - box.top, Math.round(performance.now())];  // t: ms
    };
    document.addEventListener('pointerdown', (event) => {
      const canvas = canvasOf(event);
      if (!canvas) return;
      state.drawing = true;
      if (!state.off) state.current = {canvas, points: [point(event, canvas)]};
    }, true);
    document.addEventListener('pointermove', (event) => {
      if (state.current) state.current.points.push(point(event, state.current.canvas));
    }, true);
    state.penUp = () => {  // also called by the pen-up hold below, which holds the event from the editor a moment
      const drew = state.drawing;
      state.drawing = false;
      if (state.current) {
        state.strokes.push(state.current.points);
        state.current = null;
        document.querySelector('#quick-guess')?.click();
      } else if (drew && state.off) {
        outwit.wantDrawing();
        setTimeout(() => document.querySelector('#editor-guess')?.click(), 0);  // after the editor's own pen-up
      }
    };
    document.addEventListener('pointerup', state.penUp, true);
    document.addEventListener('click', (event) => {
      const button = event.target.closest && event.target.closest('#sketchpad button, #clear');
      if (!button) return;
      if (button.id === 'clear' || button.getAttribute('aria-label') === 'Clear canvas') {
        state.strokes = []; state.off = false;
      } else if (button.getAttribute('aria-label') !== 'Brush') {
        state.off = true;
      }
    }, true);
  };
  // What the quick guess sends: the strokes recorded (an empty string when switched off).
  outwit.strokesPayload = () => {
    const state = window.__outwitStrokes;
    if (!state || state.off || !state.strokes.length) return '';
    return JSON.stringify({width: state.width, height: state.height, strokes: state.strokes});
  };
  // What a save sends with the drawing: its strokes with their times, which the row keeps (Quick, Draw!'s format,
  // outwit/ml/strokes.py); nothing once another tool than the brush was used (they no longer make the drawing).
  outwit.withStrokes = (args, at) => args.map((arg, i) => (i === at ? outwit.strokesPayload() : arg));
  // The quick guess's event (client-side): the chosen models' guess for the strokes so far, as the Label takes it,
  // and what each read. Answers that come back out of order give way to the newest.
  let asked = 0, newest = null;
  const route = (path) => `${(window.gradio_config?.root || location.href.split(/[?#]/)[0]).replace(/\/$/, '')}${path}`;
  outwit.quickGuess = async (shown, models) => {
    const payload = outwit.strokesPayload();
    if (!payload) return [shown, ''];
    const mine = ++asked;
    const answer = fetch(route(`/outwit/guess?models=${encodeURIComponent((models || []).join(','))}`),
                         {method: 'POST', body: payload, headers: {'content-type': 'application/json'}})
      .then(async (response) => {
        const body = await response.json();
        if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
        return [body.label ?? {}, body.readings ?? ''];  // no digit: an empty Label
      });
    newest = answer;
    const guessed = await answer;
    return mine === asked ? guessed : newest;
  };
  // Whether the canvas being cleared held a guessed drawing (one more attempt that did not fool); not after a save.
  outwit.guessShown = () => {
    const state = window.__outwitStrokes;
    if (state?.forget) { state.forget = false; return false; }
    return !!document.querySelector('#guess [data-testid="label-output-value"]');
  };
  // The editor's clear event (client-side): one more attempt that did not fool, counted on the plain route
  // /outwit/tried with the digit the model read and the challenge on, when the drawing cleared was guessed (not in
  // the sandbox, not after a save); the guess cleared.
  outwit.cleared = (sandbox, aim) => {
    const read = document.querySelector('#guess [data-testid="label-output-value"]')?.textContent?.trim();
    const body = JSON.stringify({guess: /^[0-9]$/.test(read || '') ? Number(read) : null, aim: aim ?? -1});
    if (outwit.guessShown() && !sandbox) fetch(route('/outwit/tried'), {method: 'POST', body}).catch(() => {});
    return [{}, ''];  // an empty Label, as Gradio sends None (null would be no change), and no readings
  };

  // The panel's 5-s tick (client-side): ask the plain route /outwit/panel what the panel is at, and only when a part
  // changed click the hidden #panel-refresh, whose event (Gradio's queue: a round's toast comes with it) sends the
  // parts that changed. When only counts changed (a crowd saves all the time) at most every PANEL_EVERY_MS; a new
  // round at once. A page in a background tab asks nothing.
  const PANEL_EVERY_MS = 15000;
  let panelAt = null, panelRound = null, panelAsked = 0, panelAgain = false, checking = false;
  outwit.panelTick = async () => {
    if (document.hidden || checking) return;
    checking = true;
    try {
      const response = await fetch(route('/outwit/panel'), {cache: 'no-store'});
      if (!response.ok) return;
      const {round, versions} = await response.json();
      const now = performance.now();
      const again = panelRound !== null && round === panelRound && panelAgain;  // a new round's plot, sent again
      panelAgain = panelRound !== null && round !== panelRound;
      if (!again && (versions === panelAt || (round === panelRound && now - panelAsked < PANEL_EVERY_MS))) return;
      panelAt = versions; panelRound = round; panelAsked = now;
      document.querySelector('#panel-refresh')?.click();
    } catch (error) {
      // the server is away for a moment (a restart): the next tick asks again
    } finally {
      checking = false;
    }
  };
  outwit.clearSaved = () => {
    if (window.__outwitStrokes) window.__outwitStrokes.forget = true;
    outwit.clearCanvas('sketchpad');
  };

  // The canvas's parts go to the server only when an event reads the drawing: Save, Attack it, Explain, the guess.
  // Gradio 6.31's page asks every component that took part in an event for its data again on each change of any
  // event's loading status (5 a timer tick), and an editor holding ink encodes and uploads its three layers each
  // time: 15 uploads a tick, none of them used. So a part upload is sent for real only in the moments after a click
  // that reads the drawing (until the pen next touches a canvas), and a part already sent is answered with the path
  // the server gave it; the other asks are answered here, with a path that names no file (the page keeps it only as
  // the component's last value; the next event that reads the drawing asks again).
  const PART = /^(background|composite|layer_\d+)\.png$/;
  let wantedUntil = 0;
  const sent = new Map();  // a part's name, size and hash → the server's answer
  outwit.wantDrawing = () => { wantedUntil = performance.now() + 10000; };
  document.addEventListener('click', (event) => {
    if (event.target.closest?.('#save, #attack-run, #explain, #opponents, #fool-all')) outwit.wantDrawing();
    else if (event.target.closest?.('button[aria-label="Clear canvas"]')) wantedUntil = 0;  // nothing left to read
  }, true);
  document.addEventListener('pointerdown', (event) => {
    if (event.target.closest?.('#sketchpad canvas, #attack-sketchpad canvas')) wantedUntil = 0;
  }, true);
  const fingerprint = async (files) => {
    const keys = [];
    for (const file of files) {
      const bytes = new Uint8Array(await file.arrayBuffer());
      let hash = 0x811c9dc5;  // FNV-1a
      for (let i = 0; i < bytes.length; i++) hash = Math.imul(hash ^ bytes[i], 0x01000193);
      keys.push(`${file.name}:${bytes.length}:${hash >>> 0}`);
    }
    return keys.join('|');
  };
  const pageFetch = window.fetch.bind(window);
  window.fetch = async (input, init = {}) => {
    const url = typeof input === 'string' ? input : input?.url || '';
    const files = init.body instanceof FormData ? init.body.getAll('files') : [];
    if (!url.includes('/gradio_api/upload') || !files.length || !files.every((f) => PART.test(f.name || ''))) {
      return pageFetch(input, init);
    }
    const wanted = performance.now() <= wantedUntil;
    const key = await fingerprint(files);
    const answer = (text) => new Response(text, {status: 200, headers: {'content-type': 'application/json'}});
    if (sent.has(key)) {  // sent, or being sent (the page asks for the same parts several times at once)
      const text = await sent.get(key);
      if (text !== null) return answer(text);
    }
    if (!wanted) return answer(JSON.stringify(files.map((file) => `outwit-not-sent/${file.name}`)));
    const response = pageFetch(input, init);
    sent.set(key, response.then((r) => (r.ok ? r.clone().text() : null), () => null));
    if (sent.size > 16) sent.delete(sent.keys().next().value);
    return response;
  };

  // Names for what a screen reader would otherwise announce as nothing (`labels`: CSS selector -> name), set again
  // whenever Gradio re-renders those elements.
  outwit.labelElements = (labels) => {
    const apply = () => {
      for (const [selector, label] of Object.entries(labels)) {
        for (const element of document.querySelectorAll(selector)) {
          if (element.getAttribute('aria-label') !== label) {
            element.setAttribute('aria-label', label);
            element.setAttribute('role', 'img');
          }
        }
      }
    };
    apply();
    new MutationObserver(apply).observe(document.body, {childList: true, subtree: true});
  };

  // The pen-up hold. The server answers the quick guess in ~6 ms, but without a GPU the page showed it 150-230 ms
  // after the pen lifted: the editor's own work on the pen-up (it bakes the stroke into its layer: 100-170 ms of main
  // thread) ran first, and the editor redraws every frame while it thinks the pen is down (40-60 ms each), so the
  // answer and Gradio's update waited behind two or three of those frames. So the pen-up of a recorded stroke is held
  // from the editor (which listens on `window`, capturing; this listener is installed in the page's <head>, before
  // the editor's) while the page records the stroke and asks for the quick guess, and handed on, the same event
  // again, once the guess has changed and been painted, at most HAND_ON_MS later, or at once when the pen comes down
  // again. Meanwhile the editor sees no moves (to it the pen is still down) and draws no frames. bench/pen_up.py
  // measures it with and without.
  const HAND_ON_MS = 250;
  const raf = window.requestAnimationFrame.bind(window), caf = window.cancelAnimationFrame.bind(window);
  // While held, the page's frame callbacks (the editor redraws every frame while, to it, the pen is down: 40-60 ms of
  // main thread each without a GPU) are put off, so that the guess's answer and Gradio's update are not queued
  // behind them; they run in the first frame after the hand-on. Cancelling one still works meanwhile.
  let held = null, due = new Map();  // held.putOff: frame callbacks put off; due: those to run next frame; by id
  window.requestAnimationFrame = (callback) => {
    const id = raf((time) => { if (held) held.putOff.set(id, callback); else callback(time); });
    return id;
  };
  window.cancelAnimationFrame = (id) => { if (!held?.putOff.delete(id) && !due.delete(id)) caf(id); };
  const resume = (putOff) => {
    if (!putOff.size) return;
    for (const [id, callback] of putOff) due.set(id, callback);
    raf((time) => {
      const run = due;
      due = new Map();
      for (const callback of run.values()) {
        try { callback(time); } catch (error) { reportError(error); }  // as the browser would: the rest still run
      }
    });
  };
  const handOn = () => {
    if (!held) return;
    const {event, target, observer, timer, putOff} = held;
    held = null;
    resume(putOff);
    observer.disconnect();
    clearTimeout(timer);
    window.__outwitHandingOn = true;
    try { target.dispatchEvent(new PointerEvent('pointerup', event)); } finally { window.__outwitHandingOn = false; }
  };
  window.addEventListener('pointerup', (event) => {
    const state = window.__outwitStrokes;
    const guess = document.querySelector('#guess');
    if (window.__outwitHandingOn || window.__outwitNoHold || !event.isTrusted || !state || !state.current || !guess) {
      return;  // (__outwitNoHold: bench/pen_up.py's comparison)
    }
    handOn();
    event.stopImmediatePropagation();
    const shown = () => [...guess.querySelectorAll('[data-testid="label-output-value"], meter')]
      .map((e) => e.getAttribute('value') ?? e.textContent).join('|');  // its top digit and bars
    const before = shown();
    const observer = new MutationObserver(() => {
      if (shown() === before) return;  // Gradio marking the request pending, not the answer
      observer.disconnect();
      raf(() => setTimeout(handOn, 0));  // after the frame that paints the guess
    });
    held = {event, target: event.target, observer, timer: setTimeout(handOn, HAND_ON_MS), putOff: new Map()};
    observer.observe(guess, {subtree: true, childList: true, characterData: true, attributes: true});
    state.penUp();
  }, true);
  window.addEventListener('pointerdown', handOn, true);
  window.addEventListener('pointercancel', handOn, true);
  window.addEventListener('pointermove', (event) => {  // the pen is up: the editor must not draw on meanwhile
    if (held && !window.__outwitHandingOn) event.stopImmediatePropagation();
  }, true);
})();
