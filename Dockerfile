# One image for every Podium service; the command picks the role (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The dependency layer, from pyproject.toml alone: a change to the code does not reinstall it.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The code, installed in place (editable, no dependencies), so the image holds one copy of it.
COPY README.md ./
COPY podium ./podium
COPY agents ./agents
COPY bus ./bus
COPY registry ./registry
COPY mcp_servers ./mcp_servers
COPY bench ./bench
COPY cards ./cards
# Compiled now: containers run with a read-only root filesystem (deploy/kubernetes), where Python could not
# cache bytecode, and a replica started from zero should not spend its cold start compiling.
RUN pip install --no-deps -e . \
    && python -m compileall -q podium agents bus registry mcp_servers bench cards \
    && useradd --create-home --uid 10001 podium

# Not root. Secrets (Redis passwords, tokens, API keys) come from the environment at run time.
USER podium
ENV PODIUM_CARDS_DIR=/app/cards \
    PODIUM_HEALTH_PORT=8000

# Containers listen on all interfaces inside their own network namespace; publish ports deliberately.
EXPOSE 8000
# Every Podium service answers GET /healthz (agents, registry, MCP servers over HTTP); the image has no
# curl, so Python asks. PODIUM_HEALTH_PORT names the port when a service listens elsewhere.
HEALTHCHECK --interval=5s --timeout=3s --start-period=60s --retries=5 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PODIUM_HEALTH_PORT', '8000'), timeout=2)"]

ENTRYPOINT ["podium"]
CMD ["--help"]
