"""Page modules: each defines `render()`; `app.py` registers them with `st.navigation`."""
