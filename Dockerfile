# LearnUpon SAML broker: gunicorn serving the app factory, as a non-root user.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY broker ./broker
RUN pip wheel --no-cache-dir --wheel-dir /wheels . gunicorn

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home /app broker
WORKDIR /app
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER broker
ENV BROKER_CONFIG=/app/config/broker.yaml
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--workers", "2", "--access-logfile", "-", "broker.wsgi:app"]
