#!/usr/bin/env bash
# The benchmark suite on a GPU machine that has PyTorch, Lightning and timm but none of the
# project's other packages and no package registry (the device machines lent to some sessions).
#
#   bash benchmarks/gpu_suite.sh prepare
#       here, with the registries: the Python 3.12 wheels the GPU image lacks, into .whl/
#       (git-ignored, about 4 MB; the versions are uv.lock's, read with .uv/bin/uv or $UV)
#   bash benchmarks/gpu_suite.sh run [benchmarks/run.py arguments]
#       there (the device tool with carry [".whl"]): installs them under /tmp/site, runs
#       benchmarks/run.py --device cuda --repeats 3 with the cases in the order they matter (the
#       arguments given replace those) for at most SUITE_SECONDS (540: a device command may run
#       600 s), and copies the tables, written after every case, to $OUT when it is set
set -euo pipefail
cd "$(dirname "$0")/.."
# the packages the GPU image lacks (hydra-joblib-launcher: esc10_cnn6 composes with it); their versions
# come from uv.lock
NEEDED=(hydra-core omegaconf antlr4-python3-runtime hydra-joblib-launcher speechbrain hyperpyyaml ruamel-yaml
        ruamel-yaml-clib soundfile cffi pycparser pyannote-core pyannote-metrics pyannote-database)
case "${1:-}" in
  prepare)
    pattern="^($(IFS='|'; echo "${NEEDED[*]}"))=="
    mapfile -t pins < <("${UV:-.uv/bin/uv}" export --frozen --no-hashes --all-extras --no-header \
      --no-emit-project | grep -E "$pattern" | sed 's/ *;.*//')
    [ ${#pins[@]} -eq ${#NEEDED[@]} ] || { echo "uv.lock pins ${#pins[@]} of ${#NEEDED[@]}: ${pins[*]}"; exit 1; }
    mkdir -p .whl
    # hydra's parser runtime is published as a source archive only; it is pure Python
    python3 -m pip wheel -q --no-deps "$(printf '%s\n' "${pins[@]}" | grep ^antlr4)" -w .whl
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
      --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
      $(printf '%s\n' "${pins[@]}" | grep -v ^antlr4)
    ls .whl
    ;;
  run)
    shift
    py="${PYTHON:-python3}"
    if ! "$py" -c "import hydra_plugins.hydra_joblib_launcher, speechbrain, soundfile, pyannote.core" \
        2>/dev/null; then
      "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl
      export PYTHONPATH=/tmp/site
    fi
    export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
    args=("$@")
    [ ${#args[@]} -gt 0 ] || args=(--device cuda --repeats 3 --only mfu overhead speedups pipeline
                                   loading evaluation frontends inference metrics)
    status=0
    timeout "${SUITE_SECONDS:-540}" "$py" benchmarks/run.py "${args[@]}" || status=$?
    if [ -n "${OUT:-}" ]; then cp logs/benchmarks/*.md logs/benchmarks/*.json "$OUT"/ 2>/dev/null || true; fi
    exit $status
    ;;
  *)
    sed -n 2,12p "$0"
    exit 2
    ;;
esac
