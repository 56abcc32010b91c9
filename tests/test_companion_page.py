"""The companion module as a web app loads it, outside the runner: the README's two ways, each in real Chromium
against a real conversion of a default-GRU Keras model. As a `<script>` after tf.min.js (it registers on the
global `tf`); as an ES module next to TF.js's ES module build (`install(tf)` registers on that `tf`)."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import converter  # noqa: E402
from converter.companion_table import JS_FILE  # noqa: E402

# The README's snippets, verbatim between the markers; the test adds only the input and where the output goes.
SCRIPT_TAG = """<!doctype html>
<script src="/node_modules/@tensorflow/tfjs/dist/tf.min.js"></script>
<script src="model/tfjs_certify_companion.js"></script>
<script>
  tf.loadLayersModel('model/model.json').then(model => {
    window.result = model.predict(tf.tensor(INPUT)).arraySync();
  }).catch(e => { window.result = String(e); });
</script>
"""
ES_MODULE = """<!doctype html>
<script type="module">
  import * as tf from '/node_modules/@tensorflow/tfjs/dist/tf.fesm.min.js';
  import './model/tfjs_certify_companion.js';
  tfjsCertifyCompanion.install(tf);
  try {
    const model = await tf.loadLayersModel('model/model.json');
    window.result = model.predict(tf.tensor(INPUT)).arraySync();
  } catch (e) { window.result = String(e); }
</script>
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A web app's folder: the converted model with its companion module, the two pages, and Keras's answer."""
    d = tmp_path_factory.mktemp("site")
    inp = keras.Input((6, 3))
    x = keras.layers.Bidirectional(keras.layers.GRU(4, return_sequences=True))(inp)
    model = keras.Model(inp, keras.layers.GRU(3)(x))
    for w in model.weights:  # biases away from zero, so that the [2, 3 units] bias matters
        w.assign(np.random.default_rng(len(w.path)).uniform(-0.5, 0.5, w.shape).astype("float32"))
    model.save(d / "gru.keras")
    converter.convert(d / "gru.keras", d / "model", companion=True)
    x = np.random.default_rng(0).uniform(-2, 2, (2, 6, 3)).astype("float32")
    for name, page in (("script.html", SCRIPT_TAG), ("module.html", ES_MODULE)):
        (d / name).write_text(page.replace("INPUT", json.dumps(x.tolist())))
    return d, np.asarray(model(x))


async def _results(urls: list[str]) -> list:
    """What each page leaves in window.result, one browser for all."""
    from playwright.async_api import async_playwright

    from js_runner.browser import CHROMIUM_FLAGS, find_chromium

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=find_chromium(), args=CHROMIUM_FLAGS, headless=True)
        try:
            out = []
            for url in urls:
                page = await browser.new_page()
                await page.goto(url)
                await page.wait_for_function("window.result !== undefined", timeout=60_000)
                out.append(await page.evaluate("window.result"))
                await page.close()
            return out
        finally:
            await browser.close()


@pytest.mark.browser
def test_a_web_app_loads_the_module_and_runs_the_gru_as_keras_does(site):
    from js_runner.server import StaticServer

    folder, want = site
    assert (folder / "model" / JS_FILE).is_file()
    pages = ["script.html", "module.html"]
    with StaticServer() as server:
        prefix = server.register(str(folder))
        results = asyncio.run(_results([prefix + page for page in pages]))
    for page, got in zip(pages, results):
        assert not isinstance(got, str), (page, got)  # an error message from the page
        np.testing.assert_allclose(np.asarray(got, np.float32), want, atol=1e-3, rtol=1e-3, err_msg=page)
