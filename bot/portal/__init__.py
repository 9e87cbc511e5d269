"""The advocates' portal: where support workers claim, open, contact about and close the
requests sealed for their organisation. Server-rendered (aiohttp + Jinja2), served by the same
`safebot run` as the bot, under /portal/. See docs/architecture.md, "Portal"."""
