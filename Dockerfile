# m365vaultd container image. Multi-stage: build on Debian 12 with the same
# packages as scripts/deps.sh, run on a slim Debian 12 as a non-root user.
# (Docker cannot run on the development machines; every step here is one that
# scripts/deps.sh and scripts/build.sh run there.)
#
#   docker build -t m365vault .
#   docker run -p 8080:8080 -e M365VAULT_LISTEN=0.0.0.0:8080 \
#     -e M365VAULT_DATABASE_URL=postgresql://m365vault@db/m365vault -v m365vault:/var/lib/m365vault m365vault

FROM debian:12 AS build
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config git \
      libboost1.81-all-dev libboost-url1.81-dev nlohmann-json3-dev libpq-dev libssl-dev \
      libspdlog-dev libzstd-dev libsystemd-dev libtomlplusplus-dev libhowardhinnant-date-dev libgmime-3.0-dev zlib1g-dev \
      libarchive-dev libical-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DM365VAULT_TESTS=OFF \
    && ninja -C build m365vaultd graph-emulator

FROM debian:12-slim
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libboost-url1.81.0 libpq5 libssl3 libspdlog1.10 libfmt9 libzstd1 libsystemd0 libtomlplusplus3 libdate-tz3 libgmime-3.0-0 libarchive13 libical3 tzdata \
      postgresql-15 ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/m365vault --shell /usr/sbin/nologin m365vault \
    && install -d -o m365vault -g m365vault -m 0700 /var/lib/m365vault
COPY --from=build /src/build/daemon/m365vaultd /usr/local/bin/m365vaultd
# `m365vaultd demo` starts the Graph emulator found beside it.
COPY --from=build /src/build/emulator/graph-emulator /usr/local/bin/graph-emulator
COPY deploy/m365vault.example.toml /etc/m365vault/m365vault.toml
USER m365vault
ENV M365VAULT_DATA_DIR=/var/lib/m365vault M365VAULT_LISTEN=0.0.0.0:8080
VOLUME /var/lib/m365vault
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/m365vaultd"]
CMD ["serve"]
