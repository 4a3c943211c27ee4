"""The app's pages: each module defines `render()`; `app.py` registers them with `st.navigation`.

Not named `pages/`: a folder of that name next to `app.py` switches Streamlit into its legacy
multipage mode, where every file in it is reachable by URL without the login gate.
"""
