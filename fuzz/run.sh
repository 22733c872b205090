#!/usr/bin/env bash
# `make fuzz`: every fuzz target for FUZZ_SECONDS (default 600) under
# libFuzzer with AddressSanitizer, a 2 GB memory limit (so an unbounded
# allocation is a failure) and a 10 s per-input limit (so a hang is one),
# JOBS targets at a time. Seeds come from the project's own files and a
# phantom study; the corpora grow under fuzz/corpus/ (ignored by git) and
# crashes land in fuzz/artifacts/<target>/. Prints one table row per target
# and exits 1 if any target found a crash, a leak, a timeout or an
# out-of-memory input.
#
# cargo-fuzz needs nightly-only rustc flags (-Zsanitizer); the machine has
# one stable toolchain, which accepts them with RUSTC_BOOTSTRAP=1.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(cd .. && pwd)
SECONDS_PER_TARGET=${FUZZ_SECONDS:-600}
JOBS=${JOBS:-$(nproc)}
TARGETS=${FUZZ_TARGETS:-"prototxt npy contour manifest dicom caffemodel safetensors run_folder"}
export RUSTC_BOOTSTRAP=1
# libtorch for the runtime's targets (its build scripts link it; at run time
# the loader needs to find it).
LIBTORCH_LIB="$ROOT/.venv/libtorch/lib"
export LD_LIBRARY_PATH="$LIBTORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# libtorch's own allocations are not instrumented; keep ASan to real errors.
export ASAN_OPTIONS=${ASAN_OPTIONS:-"detect_leaks=1:allocator_may_return_null=1:detect_odr_violation=0"}

command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
cargo fuzz build -O

LVC="$ROOT/target/release/lvc"
[ -x "$LVC" ] || (cd "$ROOT" && make build)

seeds() {
  # (`find | head` pipelines end with `|| true`: head closing the pipe
  # kills find with SIGPIPE, which pipefail would make fatal.)
  local target=$1 dir=corpus/$1
  mkdir -p "$dir"
  [ -n "$(ls -A "$dir" 2>/dev/null)" ] && return 0
  local study=work/study
  case $target in
    prototxt)
      find "$ROOT/../shared/corpus/prototxt" "$ROOT/models" "$ROOT/tests/fixtures" "$ROOT/docs" \
        -name '*.prototxt' -size -64k 2>/dev/null | head -300 | while read -r f; do cp "$f" "$dir/$(sha1sum < "$f" | cut -c1-16)"; done || true ;;
    npy)
      python3 - "$dir" <<'EOF'
import struct, sys
def npy(descr, shape, data, fortran=False):
    d = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, str(tuple(shape)))
    d += ' ' * ((64 - (10 + len(d) + 1) % 64) % 64) + '\n'
    return b'\x93NUMPY\x01\x00' + struct.pack('<H', len(d)) + d.encode() + data
seeds = {
    'f4': npy('<f4', [1, 1, 2, 2], struct.pack('<4f', 0, 1, 2, 3)),
    'u1': npy('|u1', [3], b'\x00\x01\x02'),
    'i2be': npy('>i2', [2], struct.pack('>2h', -1, 5)),
    'f8f': npy('<f8', [2, 2], struct.pack('<4d', 0, 1, 2, 3), True),
    'b1': npy('|b1', [2], b'\x00\x01'),
}
for name, data in seeds.items():
    open(f'{sys.argv[1]}/{name}', 'wb').write(data)
EOF
      ;;
    contour) find "$study" -name '*contour*.txt' | head -20 | while read -r f; do cp "$f" "$dir/"; done || true ;;
    manifest) cp work/ds/manifest.json "$dir/" ;;
    dicom) find "$study" -name '*.dcm' | head -10 | while read -r f; do cp "$f" "$dir/"; done || true ;;
    caffemodel) cp "$ROOT/../shared/golden/caffe/models/layer_probe.caffemodel" "$dir/" 2>/dev/null || true ;;
    safetensors)
      # A tiny net's weights and solver state, written by lvc itself.
      (cd work && printf '%s\n' 'name: "t"' \
        'layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 4 dim: 4 } } }' \
        'layer { name: "label" type: "Input" top: "label" input_param { shape { dim: 1 dim: 1 dim: 4 dim: 4 } } }' \
        'layer { name: "s" type: "Convolution" bottom: "data" top: "s" convolution_param { num_output: 2 kernel_size: 1 } }' \
        'layer { name: "loss" type: "SoftmaxWithLoss" bottom: "s" bottom: "label" top: "loss" }' > t.prototxt
       printf 'net: "t.prototxt"\nbase_lr: 0.1\nmax_iter: 1\nlr_policy: "fixed"\nsnapshot: 1\nsnapshot_prefix: "snap"\nsnapshot_format: HDF5\n' > t_solver.prototxt
       python3 -c 'import struct,sys; d="{'"'"'descr'"'"': '"'"'<f4'"'"', '"'"'fortran_order'"'"': False, '"'"'shape'"'"': (1, 1, 4, 4), }"; d+=" "*((64-(10+len(d)+1)%64)%64)+"\n"; open("z.npy","wb").write(b"\x93NUMPY\x01\x00"+struct.pack("<H",len(d))+d.encode()+b"\0"*64)'
       "$LVC" train --solver t_solver.prototxt --feed data=z.npy --feed label=z.npy >/dev/null 2>&1 || true)
      find work -maxdepth 1 -name '*.safetensors' | while read -r f; do cp "$f" "$dir/"; done ;;
    run_folder)
      # run.json, metrics.json, evaluation.json and a result.json, NUL-separated.
      local fixture=$ROOT/tests/fixtures/report_run
      { cat "$fixture/run.json"; printf '\0'; cat "$fixture/metrics.json"; printf '\0'; cat "$fixture/evaluation.json"; printf '\0';
        cat "$(find "$fixture/overlays" -name result.json | head -1)"; } > "$dir/fixture" ;;
  esac
  # libFuzzer needs at least one input.
  [ -n "$(ls -A "$dir")" ] || printf 'x' > "$dir/empty"
}

max_len() {
  case $1 in
    dicom|caffemodel|safetensors) echo 300000 ;;
    *) echo 65536 ;;
  esac
}

# One phantom study (and its dataset) for the seeds, made before the
# targets start in parallel.
if [ ! -d work/ds ]; then
  rm -rf work && mkdir -p work
  "$LVC" phantom --out work/study --cases 2 --seed 1 >/dev/null
  "$LVC" dataset create --images work/study/challenge_training \
    --contours "work/study/Sunnybrook Cardiac MR Database ContoursPart3" --out work/ds --val-pct 50 >/dev/null
fi

rm -rf logs && mkdir -p logs
run_one() {
  local target=$1
  seeds "$target"
  mkdir -p "artifacts/$target"
  cargo fuzz run -O "$target" "corpus/$target" -- \
    -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=10 \
    -max_len="$(max_len "$target")" -print_final_stats=1 \
    -artifact_prefix="artifacts/$target/" > "logs/$target.log" 2>&1
}

pids=()
failed=0
for target in $TARGETS; do
  run_one "$target" & pids+=($!)
  if [ ${#pids[@]} -ge "$JOBS" ]; then
    wait "${pids[0]}" || failed=1
    pids=("${pids[@]:1}")
  fi
done
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done

printf '| target | seconds | runs | corpus | result |\n|---|---|---|---|---|\n'
for target in $TARGETS; do
  log=logs/$target.log
  if [ ! -f "$log" ]; then
    printf '| %s | - | - | - | FAILED: did not start (seeds?) |\n' "$target"
    failed=1
    continue
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
  secs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | grep -o 'in [0-9]*' | grep -o '[0-9]*' | tail -1 || true)
  corpus=$(ls "corpus/$target" | wc -l)
  if grep -q 'ERROR: libFuzzer\|ERROR: AddressSanitizer\|==ERROR\|panicked' "$log"; then
    result="FAILED: $(grep -m1 'ERROR\|panicked' "$log" | cut -c1-80); see fuzz/$log and fuzz/artifacts/$target/"
    failed=1
  else
    result=clean
  fi
  printf '| %s | %s | %s | %s | %s |\n' "$target" "$secs" "$runs" "$corpus" "$result"
done
exit $failed
