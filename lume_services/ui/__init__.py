"""The web UI, served by ``lume-services serve`` next to the REST API: server-rendered pages (Jinja2).

:mod:`.auth` signs people in (a server-side session behind an HttpOnly cookie)
and guards every form against cross-site requests; :mod:`.pages` holds the
pages; :mod:`.render` the templates, their escaping and the pages' headers.
Pages read and write through the same service and the same error tree as the
API, so a page and its JSON call agree.
"""
