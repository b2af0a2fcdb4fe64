"""A visitor in a real browser: Debian's Chromium driven by Playwright, drawing with the mouse or a finger (the
browser tests and bench/pen_up.py)."""

from outwit.sim.drawings import stroke_points
from outwit.ui import sketchpad as ui

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def draw(page, digit: int, sketchpad: str = "sketchpad", pause_ms: int = 0) -> None:
    """Draw the digit's strokes with the mouse, as a person would; no tool is clicked first. `pause_ms`: a pause
    after each stroke."""
    canvas = page.locator(f"#{sketchpad} canvas").first
    box = canvas.bounding_box()
    scale_x, scale_y = box["width"] / ui.CANVAS, box["height"] / ui.CANVAS
    for stroke in stroke_points(digit, ui.CANVAS):
        points = [(box["x"] + x * scale_x, box["y"] + y * scale_y) for x, y in stroke]
        page.mouse.move(*points[0])
        page.mouse.down()
        for point in points[1:]:
            page.mouse.move(*point, steps=2)
        page.mouse.up()
        if pause_ms:
            page.wait_for_timeout(pause_ms)


def draw_by_touch(page, digit: int, sketchpad: str = "sketchpad") -> None:
    """Draw the digit's strokes with a finger: touch events, as a phone sends them (the page must be opened in a
    context with `has_touch=True`). Over the middle 80% of the canvas's shorter side."""
    canvas = page.locator(f"#{sketchpad} canvas").first
    box = canvas.bounding_box()
    side = 0.8 * min(box["width"], box["height"])
    left, top = box["x"] + (box["width"] - side) / 2, box["y"] + (box["height"] - side) / 2
    touch = page.context.new_cdp_session(page)
    for stroke in stroke_points(digit, ui.CANVAS):
        points = [{"x": left + x / ui.CANVAS * side, "y": top + y / ui.CANVAS * side} for x, y in stroke]
        touch.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [points[0]]})
        for point in points[1:]:
            touch.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [point]})
        touch.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    touch.detach()
