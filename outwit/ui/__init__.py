"""The page: its layout (page.py), the drawing tab, the status panel, the other tabs, shared components, and the
page's scripts and styles (assets/)."""
