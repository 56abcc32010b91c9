"""js_runner."""
