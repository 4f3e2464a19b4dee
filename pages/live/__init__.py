"""Parts of the Train page that are not pages: the live charts' browser component.

ROUTE is where app.py serves the live charts' updates (GET {ROUTE}/{run_id}) and where
charts.js asks for them. Streamlit mounts an app's own routes at the server's root, not under
server.baseUrlPath: a reverse proxy must pass this path through as well as the app's.
"""

ROUTE = "/live"
