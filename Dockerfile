# syntax=docker/dockerfile:1
# Images of the HRMS services, their workers and kwire: one Dockerfile, one image per executable.
#
#   docker build --build-arg SERVICE=leave-service -t hrms/leave-service:0.1.0 .
#   docker build --build-arg SERVICE=kwire -t hrms/kwire:0.1.0 .
#
# SERVICE is one of: user-management-service employee-service leave-service attendance-service
# notification-service audit-service compliance-service kwire. The build stage compiles all of them
# once (a cached layer shared by every image); the runtime stage takes the one SERVICE names as its
# entrypoint, plus kwire (for `kubectl exec ... kwire groups describe ...`). The notification and
# audit images also run the workers: same image, argument `worker`.
#
# Binaries link the Swift standard library and Foundation statically (--static-swift-stdlib): the
# runtime needs only glibc, libstdc++ and the codec libraries KafkaWire links (lz4, zlib, snappy, zstd).

ARG SWIFT_VERSION=6.3.1
ARG DEBIAN_RELEASE=bookworm

FROM swift:${SWIFT_VERSION}-${DEBIAN_RELEASE} AS build
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        liblz4-dev zlib1g-dev libsnappy-dev libzstd-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The manifest alone first: dependency resolution is cached until Package.swift changes.
COPY Package.swift ./
RUN swift package resolve
# SwiftPM checks every declared target's folder, test targets included, so Tests/ comes along.
COPY Sources ./Sources
COPY Tests ./Tests
COPY Fixtures ./Fixtures
ARG PRODUCTS="user-management-service employee-service leave-service attendance-service notification-service audit-service compliance-service kwire"
RUN --mount=type=cache,target=/src/.build,id=hrms-swift-build \
    set -eu; mkdir -p /out; \
    for p in ${PRODUCTS}; do \
        swift build -c release --static-swift-stdlib --product "$p"; \
        cp "$(swift build -c release --static-swift-stdlib --show-bin-path)/$p" /out/; \
    done; \
    strip /out/*

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        liblz4-1 zlib1g libsnappy1v5 libzstd1 libstdc++6 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 hrms \
    && useradd --system --uid 10001 --gid hrms --home-dir /var/lib/hrms --shell /usr/sbin/nologin hrms \
    && install -d -o hrms -g hrms -m 0750 /var/lib/hrms
ARG SERVICE
RUN test -n "${SERVICE}" || { echo "build with --build-arg SERVICE=<executable>" >&2; exit 1; }
COPY --from=build /out/kwire /usr/local/bin/kwire
COPY --from=build /out/${SERVICE} /usr/local/bin/${SERVICE}
# A fixed entrypoint path whatever the service (exec form cannot expand a build argument).
RUN ln -sf "/usr/local/bin/${SERVICE}" /usr/local/bin/hrms-entrypoint
ENV HOST=0.0.0.0 \
    DATA_DIR=/var/lib/hrms
WORKDIR /var/lib/hrms
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/hrms-entrypoint"]
