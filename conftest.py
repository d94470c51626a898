pytest_plugins = ["collect_common.testing.pytest_plugin"]
