"""The JupyterLab 4 page of hopscope's real-UI test (issue #16), served by Debian's jupyter_server 1.23 and
jupyterlab_server 2.16: LabServerApp serves the page (templates/index.html), the core bundle built by build.js
(app/static), its settings schemas and theme, the user's settings and workspaces, and every prebuilt extension
on Jupyter's labextensions path (where `hopscope install` puts hopscope-widgets). Kernels, contents and
sessions are jupyter_server's own REST and websocket APIs.

The same server serves the Jupyter Notebook 7 page of a notebook at /notebooks/<path> (templates/notebook.html,
the notebook.js entry of the same build), with the page config Notebook 7's own server gives that page
(notebookPage "notebooks").

Usage: python3 server.py --port=N --ServerApp.root_dir=DIR [other ServerApp flags]
"""
import json
import os

from jupyterlab_server import LabServerApp
from jupyterlab_server.handlers import LabHandler
from tornado import web

HERE = os.path.dirname(os.path.abspath(__file__))
APP = os.path.join(HERE, "app")
# Settings this page starts with (JupyterLab's overrides.json): widget state is saved into the notebook, so a
# reloaded notebook draws its views without a kernel (the user's "Save Widget State Automatically").
OVERRIDES = {"@jupyter-widgets/jupyterlab-manager:plugin": {"saveState": True}}


def _jupyter_server_extension_points():
    # jupyter_server finds the application it starts through this hook, even when run as a script.
    return [{"module": __name__, "app": HarnessApp}]


class Notebook7Handler(LabHandler):
    """Notebook 7's notebook page: JupyterLab's page config (federated extensions, settings, URLs) plus the
    sentinel Notebook 7's NotebookBaseHandler sets for this page, rendered with the notebook entry."""

    @web.authenticated
    def get(self, path=None):  # the path is read by the page's router, as in Notebook 7's NotebookHandler
        # A copy without the lab page's keys: jupyterlab_server keeps one page-config dict in the settings, and
        # the lab page's handler writes its tree path, mode and workspace into it.
        page_config = {k: v for k, v in self.get_page_config().items() if k not in ("treePath", "mode", "workspace")}
        page_config["notebookPage"] = "notebooks"
        return self.write(self.render_template("notebook.html", page_config=page_config))


class HarnessApp(LabServerApp):
    name = "lab"
    app_name = "hopscope lab harness"
    app_version = json.load(open(os.path.join(HERE, "package.json")))["version"]
    load_other_extensions = False
    static_dir = os.path.join(APP, "static")
    schemas_dir = os.path.join(APP, "schemas")
    themes_dir = os.path.join(APP, "themes")
    templates_dir = os.path.join(HERE, "templates")

    def initialize_settings(self):
        # Per-run folders for settings, workspaces and overrides: nothing is shared between runs.
        runtime = os.environ.get("HOPSCOPE_LAB_STATE") or os.path.join(self.serverapp.root_dir, ".lab-state")
        self.app_settings_dir = os.path.join(runtime, "app-settings")
        self.user_settings_dir = os.path.join(runtime, "user-settings")
        self.workspaces_dir = os.path.join(runtime, "workspaces")
        for d in (self.app_settings_dir, self.user_settings_dir, self.workspaces_dir):
            os.makedirs(d, exist_ok=True)
        with open(os.path.join(self.app_settings_dir, "overrides.json"), "w") as f:
            json.dump(OVERRIDES, f)
        super().initialize_settings()

    def initialize_handlers(self):
        super().initialize_handlers()
        self.handlers.append((r"/notebooks/(.*)", Notebook7Handler))


if __name__ == "__main__":
    HarnessApp.launch_instance()
