# authsvc production image: `authsvc serve` (and `authsvc migrate`) against real Cognito.
# The dev extras (moto) are not installed: `authsvc dev` is for a checkout, not this image.

FROM python:3.11.11-slim-bookworm AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir .


FROM python:3.11.11-slim-bookworm AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    AUTHSVC_MIGRATIONS_DIR=/app/migrations

RUN groupadd --system --gid 10001 authsvc \
    && useradd --system --no-log-init --uid 10001 --gid authsvc --home-dir /app authsvc

COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY migrations ./migrations

USER 10001:10001
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=3)"]

CMD ["authsvc", "serve", "--host", "0.0.0.0", "--port", "8000"]
