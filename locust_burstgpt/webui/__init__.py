"""Static files of the plugin's web pages (served by locust_burstgpt.plugin.webui)."""
