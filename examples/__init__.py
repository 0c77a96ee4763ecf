"""Example applications for Flask-Conversation.

Each one runs with a single command, listed in ``examples/README.md``:

- :mod:`examples.booking`: a hotel booking site with nested conversations,
- :mod:`examples.wizard`: a multi-step sign-up form,
- :mod:`examples.htmx`: a shopping cart built with htmx, a cart per tab,
- :mod:`examples.bot`: a JSON webhook for a chat bot, and its console.
"""
