#!/usr/bin/env bash
# Installs what `make unit` needs beyond Go, on Debian: Prometheus (the integration
# test starts a real one). Idempotent: does nothing when everything is present.
set -euo pipefail
need=()
command -v prometheus >/dev/null || need+=(prometheus)
if [ ${#need[@]} -eq 0 ]; then
  echo "test dependencies present"
  exit 0
fi
echo "installing: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 "${need[@]}" >/dev/null
# Debian starts the packaged service; the tests start their own instance.
systemctl disable --now prometheus >/dev/null 2>&1 || true
