# LearnUpon SAML broker: gunicorn serving broker.wsgi:app as a non-root user, in a small image.
#   docker build -t learnupon-saml-broker .
#   docker run -p 8000:8000 -v "$PWD/config:/app/config:ro" -v "$PWD/certs:/app/certs:ro" learnupon-saml-broker
# Configuration and environment variables: docs/operating.md. Example with Redis and two replicas: docker-compose.yml.

# Build stage: a virtual environment holding the broker and gunicorn. lxml, cryptography and the other native
# dependencies come as binary wheels from PyPI, so no compiler is installed in either stage.
FROM python:3.11.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY broker ./broker
RUN python -m venv /opt/broker \
    && /opt/broker/bin/pip install ".[server]"

# Final stage: the same base image (so the venv's python path is valid), the venv, and nothing from the build.
FROM python:3.11.11-slim-bookworm
RUN groupadd --system --gid 10001 broker \
    && useradd --system --uid 10001 --gid broker --home-dir /app --no-create-home --shell /usr/sbin/nologin broker
COPY --from=build /opt/broker /opt/broker
WORKDIR /app
COPY deploy/gunicorn.conf.py deploy/gunicorn.conf.py
ENV PATH=/opt/broker/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    BROKER_CONFIG=/app/config/broker.yaml \
    PORT=8000
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request as u; sys.exit(0 if u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=3).status == 200 else 1)"]
CMD ["gunicorn", "-c", "deploy/gunicorn.conf.py", "broker.wsgi:app"]
