# PageWright Gateway: one stateless process; data under /data unless a backend is configured.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY core core
COPY gateway gateway
COPY translators translators
COPY policy policy
COPY commands commands
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /data pagewright \
    && mkdir -p /data && chown pagewright /data
COPY --from=build /install /usr/local
USER pagewright
ENV PWG_DATA_DIR=/data PWG_ADDRESS=0.0.0.0:9000
VOLUME ["/data"]
EXPOSE 9000
# Probes the address the gateway listens on (PWG_ADDRESS, PWG_TLS_*), on loopback.
HEALTHCHECK --interval=10s --timeout=3s CMD ["python", "-m", "commands.healthcheck"]
ENTRYPOINT ["pagewright-gateway"]
CMD ["serve"]
