# The api and worker image (docker-compose.yml). One image, two commands.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml README.md LICENSE ./
RUN mkdir -p runtime models workflows activities api migrations \
    && touch worker.py \
    && pip install . \
    && pip uninstall -y patient-journeys
COPY . .
RUN pip install --no-deps . \
    && useradd --system --uid 10001 journeys \
    && chown -R journeys /app
USER journeys

EXPOSE 8000
# The API by default; the worker service runs `python worker.py`.
CMD ["uvicorn", "api.main:create_app", "--factory", "--host", "0.0.0.0", "--port", "8000", \
     "--proxy-headers", "--timeout-graceful-shutdown", "20"]
