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
  // the hidden button whose event sends them. Any other tool (undo, eraser, upload) switches it off until the canvas
  // is cleared: the editor's own, slower guess then stands alone.
  //
  // The editor's own value lags the pen by a few hundred ms (it reads and encodes its canvas, then sends it). A Save
  // clicked in that time (easy once the quick guess shows) would send the drawing as it was before the last stroke,
  // or none. So the page follows the editor: each stroke that ends starts its update, or, while one runs, queues one
  // more (as the editor does); editorChanged, on the editor's change, marks one done. A Save clicked while one is due
  // is held until it is done (at most HOLD_MS), then clicked again.
  outwit.recordStrokes = () => {
    if (window.__outwitStrokes) return;
    const HOLD_MS = 3000;
    const state = window.__outwitStrokes = {strokes: [], current: null, off: false, width: 0, height: 0,
                                            drawing: false, updating: false, again: false, held: []};
    const canvasOf = (event) => event.target.closest && event.target.closest('#sketchpad canvas');
    const point = (event, canvas) => {
      const box = canvas.getBoundingClientRect();
      state.width = box.width; state.height = box.height;
      return [event.clientX - box.left, event.clientY - box.top];
    };
    const release = () => {
      const held = state.held; state.held = [];
      held.forEach((release) => release());
    };
    state.editorChanged = () => {
      if (state.again) { state.again = false; return; }  // the queued update, with the last strokes, comes next
      state.updating = false;
      release();
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
      if (state.drawing) {
        state.drawing = false;
        if (state.updating) state.again = true; else state.updating = true;
      }
      if (!state.current) return;
      state.strokes.push(state.current.points);
      state.current = null;
      document.querySelector('#quick-guess')?.click();
    };
    document.addEventListener('pointerup', state.penUp, true);
    document.addEventListener('click', (event) => {
      const save = event.target.closest && event.target.closest('#save');
      if (save && state.updating && !state.releasing) {
        event.preventDefault();
        event.stopImmediatePropagation();
        let done = false;
        const click = () => {
          if (done) return;
          done = true;
          state.releasing = true;
          save.click();
          state.releasing = false;
        };
        state.held.push(click);
        setTimeout(click, HOLD_MS);
        return;
      }
      const button = event.target.closest && event.target.closest('#sketchpad button, #clear');
      if (!button) return;
      if (button.id === 'clear' || button.getAttribute('aria-label') === 'Clear canvas') {
        state.strokes = []; state.off = false;
      } else if (button.getAttribute('aria-label') !== 'Brush') {
        state.off = true;
      }
    }, true);
  };
  outwit.editorChanged = () => { window.__outwitStrokes?.editorChanged(); };
  // The quick guess's event input: what the page recorded (an empty string when switched off).
  outwit.strokesPayload = () => {
    const state = window.__outwitStrokes;
    if (!state || state.off || !state.strokes.length) return '';
    return JSON.stringify({width: state.width, height: state.height, strokes: state.strokes});
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
