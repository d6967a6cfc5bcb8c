# One image for every Podium service; the command picks the role (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY agents ./agents
COPY bus ./bus
COPY registry ./registry
COPY mcp_servers ./mcp_servers
COPY bench ./bench
COPY cards ./cards
RUN pip install . && useradd --create-home --uid 10001 podium
USER podium

ENV PODIUM_CARDS_DIR=/app/cards
# Containers listen on all interfaces inside their own network namespace; publish ports deliberately.
ENTRYPOINT ["podium"]
CMD ["--help"]
