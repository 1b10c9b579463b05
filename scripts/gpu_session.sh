#!/usr/bin/env bash
# One lent-GPU session, everything in one go (device time is scarce): install from the offline
# wheelhouse as a user of an offline GPU box would, then the runs named in STEPS, each under its
# own time limit, logs and results under $OUT.
#   CTXBENCH_GIT_SHA=<sha> bash scripts/gpu_session.sh "$OUT"   (repository root; `wheelhouse`
#   carried; the sha for the environment record is passed in: the copy has no .git, or a stale one)
# STEPS (default "pool kernels recall"): any of
#   kernels  attention on every SDPA backend at 1K-16K (time per call vs PEERS.md)
#   pool     one scaling sweep on GPUs 0,1 then on GPU 0; stores compared, both wall times
#   recall   the recall suite on every GPU: a short MQAR + needle run, or $RECALL_ARGS
#   quality  the recall suite on GPU 0 and the perplexity suite on GPU 1 at once, each under
#            $QUALITY_LIMIT s, budgets from $RECALL_ARGS / $PPL_ARGS (Hydra overrides), into
#            $RUNS/recall-gpu and $RUNS/perplexity-gpu (carry $RUNS to resume them)
#   decode   the attention decode kernel: GPU tests, its bench beside the torch and SDPA ways, then
#            the 1.3B Transformer's decode through the harness with it (auto), with matmul, and
#            with the step compiled (suite.decode.compile=true)
#   llama    the 1.3B Transformer's 16K prefill, native beside transformers' LlamaForCausalLM;
#            the harness's prefill of that Llama (model=hf) beside a bare timing of it
#   checks   the llama step (with --host) on GPU 0; on GPU 1 meanwhile the compiled 1.3B decode at
#            4K, the selective scan's training step with each backward and the SSD's three ways
#   fused    the 1.3B Transformer's and Mamba-2's decode at 1K and 4K with and without fused_decode
#   verify   decode plain and fused (canaries) for every model, short-cold-start prefills
#   coldab   prefills with the short cold start and with a full one ($COLDAB), to compare
#   peers    mamba-ssm's and causal-conv1d's CUDA built for this GPU, beside ours (kernels suite)
#   profile  the decode step's kernels, GEMMs and gaps, plain and fused, every 1.3B model at 4K
#   gemv     the decode GEMV: GPU tests, bench beside cuBLAS, profile and decode suite on it
#   testgpu  `make test-gpu` (every gpu-marked test, or pytest $TESTGPU_ARGS) under $TESTGPU_LIMIT s
#   standard `make bench`'s GPU suite into $RUNS/$STANDARD_ID (default standard-gpu), resumable
#            across calls: carry $RUNS with the next call and it goes on where the time limit
#            ($STANDARD_LIMIT s) stopped it; the run folder comes back in run-standard.tgz
#   queue    standard, recall and perplexity ($QUEUE) as resumable runs in $RUNS, a GPU each,
#            the next to the first GPU free, all under $QUEUE_LIMIT s (carry $RUNS to resume);
#            $QUEUE_ARGS (Hydra overrides) go to each, e.g. run.retry=[crashed] after a fix
#   example  one report over every run in $EXAMPLE (default results/examples/h200-141gb), with PNGs
set -uo pipefail
OUT=${1:?usage: gpu_session.sh OUT}
# the commit the copy was sent from, for every run's environment record: 40 hex digits from the
# sender's checkout (`git rev-parse HEAD` there; on the GPU box the copy's .git can be stale)
[[ ${CTXBENCH_GIT_SHA:-} =~ ^[0-9a-f]{40}$ ]] ||
    { echo "CTXBENCH_GIT_SHA: give the sender's commit (40 hex digits), got '${CTXBENCH_GIT_SHA:-}'"; exit 2; }
# (a well-formed but wrong sha cannot be told apart here: take it from `git rev-parse HEAD` where
# the call is sent from, never from a git command run on the GPU box)
STEPS=${STEPS:-pool kernels recall}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv | tee "$OUT/gpus.csv"
NGPU=$(($(wc -l <"$OUT/gpus.csv") - 1))  # steps that use two GPUs go one after the other on one
SECOND=$((NGPU > 1 ? 1 : 0))             # the GPU of a step's second half
t0=$(date +%s)
make install EXTRAS=dev PIP_OPTS="--no-index --find-links wheelhouse" >"$OUT/install.log" 2>&1 ||
    { tail -30 "$OUT/install.log"; exit 1; }
echo "install: $(($(date +%s) - t0)) s"
R="run.results_dir=$OUT/results run.reports_dir=$OUT/reports run.progress=plain"
# where the resumable runs (standard, quality) live; carry it to resume them
# (not the published example by default: its points were measured by older code, e.g. the plain
# decode step, and new points beside them would mix two measurements in one run folder)
RUNS=${RUNS:-devstate/h200}
# RUNS_SEED (optional): a carried copy that only seeds RUNS on a fresh machine. Point RUNS at an
# ignored folder that is never carried: a warm machine keeps it between calls, so carrying the
# seed on every call can no longer overwrite what the previous call measured (it did once).
# Ignored in the checkout that sends the call (.gitignore or .git/info/exclude): a path that is
# neither carried nor ignored is removed on the device before each call, and the run restarts
# from the seed (it did once: 560 s of points measured twice).
if [ -n "${RUNS_SEED:-}" ]; then
    if [ -d "$RUNS" ]; then
        echo "runs: kept from the previous call on this machine ($RUNS)"
    else
        mkdir -p "$(dirname "$RUNS")" && cp -r "$RUNS_SEED" "$RUNS" && echo "runs: seeded from $RUNS_SEED"
    fi
fi
step() {  # name, time limit in s, command...
    local name=$1 limit=$2
    shift 2
    local s=$(date +%s)
    timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
    local rc=$?
    echo "$name: rc=$rc in $(($(date +%s) - s)) s"
    tail -25 "$OUT/$name.log"
    # one file comes back (many small ones do not)
    [ ! -d "$OUT/results" ] ||
        tar czf "$OUT/results-$name.tgz" --exclude='.triton-*' --exclude=leases -C "$OUT" results reports 2>/dev/null
    return $rc
}
for s in $STEPS; do case $s in
kernels)  # $KERNEL_ARGS (Hydra overrides) replace the attention default
    ka=${KERNEL_ARGS:-"suite.kernels.ops=[attention] sweep.context=[1k,4k,16k]
        suite.kernels.backends.attention=[cudnn,flash,efficient]"}
    step kernels "${KERNEL_LIMIT:-80}" .venv/bin/python -m harness suite=kernels $ka \
        run.id="${KERNEL_ID:-kernels-attn}" $R ;;
pool) step pool ${POOL_LIMIT:-300} .venv/bin/python -m harness.compare_stores --results-dir "$OUT/results" \
    --tag pool --fresh-triton-cache --sweep --gpus 0,1 --gpus 0 -- suite=scaling size=370m \
    'models=[transformer,mamba2]' "sweep.context=${POOL_CONTEXTS:-[4k,16k]}" \
    'suite.measure=[prefill,decode]' suite.timing.max_time_s=4 \
    run.reports_dir="$OUT/reports" run.progress=plain ;;
recall)  # $RECALL_ARGS (Hydra overrides, word-split) replace the short default budget
    ra=${RECALL_ARGS:-"models=[transformer,mamba2] suite.mqar.widths=[64] suite.mqar.kv_pairs=[16]
        suite.mqar.lrs=[3e-3] suite.mqar.steps=300 suite.niah.steps=300 sweep.context=[512,2k]"}
    step recall "${RECALL_LIMIT:-100}" .venv/bin/python -m harness suite=recall $ra \
        run.id="${RECALL_ID:-recall-short}" $R ;;
decode)
    step decode_kernel 150 bash -c ".venv/bin/python -m pytest -q -m gpu \
        tests/kernels/test_decode_attention_gpu.py && .venv/bin/python -m \
        kernels.decode_attention.bench_gpu --out $OUT/results/bench_decode_attention --lengths 4096,65536,262144,1048576"
    m="suite=scaling size=1.3b models=[transformer] suite.measure=[decode] $R"
    step decode_model 240 bash -c ".venv/bin/python -m harness $m sweep.context=[4k,64k,256k] \
        run.id=decode-auto && .venv/bin/python -m harness $m sweep.context=[4k,64k] \
        +suite.model_overrides.decode_attention=matmul run.id=decode-matmul && \
        .venv/bin/python -m harness $m sweep.context=[4k,64k] suite.decode.compile=true \
        run.id=decode-compiled" ;;
llama)  # the native Transformer's prefill vs a bare LlamaForCausalLM, same weights, and the
    # harness's prefill of that Llama (model=hf) against the bare timing of it (issue 5)
    step llama "${LLAMA_LIMIT:-150}" env CUDA_VISIBLE_DEVICES=0 .venv/bin/python -m \
        models.bench_gpu --out "$OUT/results/llama" --skip-checks --transformer 16384 --mamba2 "" \
        --llama-config "$OUT/llama-config"
    step llama_harness "${LLAMA_LIMIT:-150}" .venv/bin/python -m harness suite=standard \
        'suite.measure=[prefill]' 'models=[hf]' "+suite.model_overrides.hf_source=$OUT/llama-config" \
        'sweep.context=[16k]' run.id=llama-harness $R
    .venv/bin/python -m models.harness_vs_bare --bench "$OUT/results/llama/bench.jsonl" \
        --run "$OUT/results/llama-harness" ;;
checks)  # at once: the llama step on GPU 0, the compiled 1.3B decode step at 4K on GPU 1 (on a
    # one-GPU machine one after the other: two timed runs on one device would disturb each other)
    mkdir -p "$OUT/results/llama"
    timeout "${LLAMA_LIMIT:-150}" env CUDA_VISIBLE_DEVICES=0 .venv/bin/python -m models.bench_gpu \
        --out "$OUT/results/llama" --skip-checks --transformer 16384 --mamba2 "" --host 1024,4096 \
        >"$OUT/results/llama/llama.log" 2>&1 &
    [ "$NGPU" -gt 1 ] || wait
    step compiled "${COMPILED_LIMIT:-200}" .venv/bin/python -m harness suite=scaling size=1.3b \
        'models=[transformer,mamba2]' 'suite.measure=[decode]' 'sweep.context=[4k]' \
        suite.decode.compile=true "hardware.gpus=[$SECOND]" run.id=decode-compiled $R
    # the selective scan's training step three ways (torch / Triton backward, torch chunked)
    CUDA_VISIBLE_DEVICES=$SECOND timeout 150 .venv/bin/python -m kernels.selective_scan.bench_gpu \
        --out "$OUT/results/scan" --skip fwd,sweep,step >"$OUT/results/scan.log" 2>&1
    echo "scan train bench: rc=$?"; tail -4 "$OUT/results/scan.log"
    # the SSD scan's training step: ours (Triton forward, torch recompute backward), the torch
    # reference, mamba-ssm's Triton kernels where importable (kernels/ssd/NOTES.md "Backward")
    mkdir -p "$OUT/results/ssd"
    CUDA_VISIBLE_DEVICES=$SECOND timeout 150 .venv/bin/python -m kernels.ssd.bench_gpu \
        --out "$OUT/results/ssd" --skip cold,accuracy,scan,step >"$OUT/results/ssd.log" 2>&1
    echo "ssd train bench: rc=$?"; grep "^train" "$OUT/results/ssd.log" | tail -3
    wait
    tail -12 "$OUT/results/llama/llama.log" ;;
fused)  # the decode step with fused_decode (kernels/norm, kernels/rope_step) and without (issue 5)
    m="suite=scaling size=1.3b models=[transformer,mamba2] suite.measure=[decode] $R"
    step fused "${FUSED_LIMIT:-240}" bash -c ".venv/bin/python -m harness $m 'sweep.context=[1k,4k]' \
        suite.decode.fused=false run.id=decode-plain && .venv/bin/python -m harness $m \
        'sweep.context=[1k,4k]' run.id=decode-fused" ;;
verify)  # a change to the decode or prefill suites seen on the GPU: every model's decode at
    # $VERIFY_CONTEXTS plain and with fused_decode (each point's canary checks the timed step
    # against the torch step), then prefills whose cold start takes the short prompt
    m="suite=standard suite.measure=[decode] sweep.context=${VERIFY_CONTEXTS:-[1k,4k,1m]} $R"
    step verify_decode "${VERIFY_LIMIT:-240}" bash -c ".venv/bin/python -m harness $m \
        suite.decode.fused=false run.id=verify-plain && .venv/bin/python -m harness $m \
        run.id=verify-fused"
    p="suite=standard suite.measure=[prefill] $R"
    step verify_prefill "${VERIFY_LIMIT:-240}" bash -c ".venv/bin/python -m harness $p \
        models=[transformer] sweep.context=[256k] run.id=verify-prefill-t && .venv/bin/python \
        -m harness $p models=[hybrid_1_7] sweep.context=[1m] run.id=verify-prefill-h" ;;
coldab)  # the short cold start against a full one, same machine, same call: each prompt of
    # $COLDAB ("model:length:max_time_s") prefilled both ways; the timed calls should agree
    p="suite=standard suite.measure=[prefill] $R"
    for spec in ${COLDAB:-mamba2:1m:5 hybrid_1_7:1m:15}; do
        IFS=: read -r m l t <<<"$spec"
        for way in short full; do
            c=$([ $way = full ] && echo suite.prefill.cold_prompt=null)
            # a Triton cache of its own: kernels compiled and tuned on disk by an earlier step
            # would hide work that the short way leaves in its timed call
            step "coldab-$m-$way" 300 env TRITON_CACHE_DIR="$(mktemp -d)" .venv/bin/python -m \
                harness $p "models=[$m]" "sweep.context=[$l]" "suite.timing.max_time_s=${t:-15}" \
                $c run.id="coldab-$m-$way"
        done
    done ;;
peers)  # `make peers` (mamba-ssm's and causal-conv1d's CUDA built for this GPU alone, with their
    # packages and fla; sources from the carried wheelhouse, `make wheelhouse ARGS=--peers`),
    # then the kernels suite with them beside ours, each point gated on its reference check
    step peers_build "${PEERS_BUILD_LIMIT:-420}" make peers WHEELHOUSE=wheelhouse \
        PIP_OPTS="--no-index --find-links wheelhouse" || { echo "peers: build failed"; continue; }
    step peers "${PEERS_LIMIT:-240}" .venv/bin/python -m harness suite=kernels \
        'suite.kernels.ops=[ssd,selective_scan,conv1d]' 'sweep.context=[16k,64k,256k]' \
        'suite.kernels.backends.ssd=[triton,mamba_ssm,fla]' \
        'suite.kernels.backends.selective_scan=[triton,mamba_ssm]' \
        'suite.kernels.backends.conv1d=[triton,causal_conv1d]' run.id=kernels-peers $R ;;
gemv)  # the decode GEMV (kernels/gemv): GPU tests, its bench beside cuBLAS, the fused step's
    # profile on it, then the decode suite at 4K on it, every point's canary against F.linear
    # (tuned configs on disk: the tests, the bench and each worker would otherwise re-tune)
    export TRITON_CACHE_AUTOTUNING=1
    step gemv_kernel "${GEMV_LIMIT:-240}" bash -c ".venv/bin/python -m pytest -q -m gpu \
        tests/kernels/test_gemv_gpu.py && .venv/bin/python -m kernels.gemv.bench_gpu \
        --out $OUT/results/gemv"
    step gemv_profile "${GEMV_LIMIT:-240}" .venv/bin/python -m models.step_profile \
        --out "$OUT/results/step_profile_gemv" --gemv triton --fused-only
    # the same points on cuBLAS first, the same call's baseline
    d="suite=standard suite.measure=[decode] sweep.context=[4k,1m] $R"
    step gemv_decode "${GEMV_DECODE_LIMIT:-400}" bash -c ".venv/bin/python -m harness $d \
        run.id=decode-cublas && .venv/bin/python -m harness $d \
        suite.decode.gemv=true run.id=decode-gemv" ;;
profile)  # where a batch-1 decode step's time goes: kernels, GEMMs, gaps (models/step_profile.py)
    step profile "${PROFILE_LIMIT:-240}" .venv/bin/python -m models.step_profile \
        --out "$OUT/results/step_profile" ;;
testgpu)  # a failure stops the session: later steps would measure with code the GPU just failed
    # pytest's exit status decides (not its summary line: `-q -q` prints none, and a grep for
    # "N passed" once stopped a session after every test had passed)
    step testgpu "${TESTGPU_LIMIT:-200}" make test-gpu ARGS="${TESTGPU_ARGS:--x}" ||
        { echo "testgpu failed: the remaining steps are skipped"; break; } ;;
quality)  # resumable like standard: carry $RUNS/recall-gpu and $RUNS/perplexity-gpu
    q() {  # name, gpu, suite, overrides
        timeout "${QUALITY_LIMIT:-500}" .venv/bin/python -m harness suite="$3" "hardware.gpus=[$2]" \
            run.id="$1" $4 run.results_dir="$RUNS" run.report=false run.progress=plain \
            >"$OUT/$1.log" 2>&1
        echo "$1: rc=$?"
    }
    s0=$(date +%s)
    q recall-gpu 0 recall "${RECALL_ARGS:-}" &
    [ "$NGPU" -gt 1 ] || wait
    q perplexity-gpu "$SECOND" perplexity "${PPL_ARGS:-}" &
    wait
    echo "quality: $(($(date +%s) - s0)) s"
    tail -n 15 "$OUT/recall-gpu.log" "$OUT/perplexity-gpu.log"
    tar czf "$OUT/run-quality.tgz" --exclude='.triton-*' --exclude=leases --exclude=.primary.lock \
        "$RUNS/recall-gpu" "$RUNS/perplexity-gpu" 2>/dev/null ;;
standard)
    sid=${STANDARD_ID:-standard-gpu}
    step standard "${STANDARD_LIMIT:-400}" make bench ARGS="suite=standard run.id=$sid \
        run.results_dir=$RUNS run.report=false run.progress=plain"
    tar czf "$OUT/run-standard.tgz" --exclude=leases --exclude=.primary.lock "$RUNS/$sid" ;;
queue)  # $QUEUE's suites (default: standard recall perplexity) as resumable runs in $RUNS, one GPU
    # each (a worker per GPU): a GPU that finishes takes the next, all stop at $QUEUE_LIMIT s. Runs on different GPUs
    # do not share a device, so none times another's work; a cut run resumes on the next call.
    deadline=$(($(date +%s) + ${QUEUE_LIMIT:-540}))
    printf '%s\n' ${QUEUE:-standard recall perplexity} >"$OUT/queue.txt"
    qworker() {  # gpu
        while true; do
            left=$((deadline - $(date +%s)))
            [ "$left" -gt 30 ] || { echo "gpu $1: stops, $left s left"; return 0; }
            suite=$(flock "$OUT/queue.txt" sh -c 'head -1 "$0"; sed -i 1d "$0"' "$OUT/queue.txt")
            [ -n "$suite" ] || return 0
            echo "gpu $1: $suite ($left s left)"
            # points predicted to outlast the call are not started (run.time_limit_s): the
            # next call takes them whole, rather than this one cutting them off. The limit is
            # 5/4 of what is left: the cost model's 400 TFLOP/s is conservative for long attention
            # (the Transformer's 1M prefill point is predicted at 9.4 min; at the 535 TFLOP/s of
            # its 256K point on the H200 it takes about 7), and a limit that it can never meet
            # would defer that point forever
            timeout "$left" .venv/bin/python -m harness suite="$suite" "hardware.gpus=[$1]" \
                run.id="$suite-gpu" run.results_dir="$RUNS" run.report=false run.progress=plain \
                run.time_limit_s=$(((left - 20) * 5 / 4)) ${QUEUE_ARGS:-} >"$OUT/$suite.log" 2>&1
            echo "gpu $1: $suite rc=$?"
        done
    }
    for g in $(seq 0 $((NGPU - 1))); do qworker "$g" & done
    wait
    for f in "$OUT"/standard.log "$OUT"/recall.log "$OUT"/perplexity.log; do
        [ -f "$f" ] && { echo "== $f"; grep -E "^\[|^done|resuming|not started" "$f" | tail -12; }
    done
    tar czf "$OUT/run-queue.tgz" --exclude='.triton-*' --exclude=leases --exclude=.primary.lock \
        "$RUNS" ;;
example)  # one report over every run in $EXAMPLE, figures also as PNG (the README links them)
    EXAMPLE=${EXAMPLE:-results/examples/h200-141gb}
    out="reports/${EXAMPLE#results/}"
    .venv/bin/python -m harness.report "$EXAMPLE" --png "$out/figures" >"$OUT/example.log" 2>&1
    echo "example: rc=$?"; tail -3 "$OUT/example.log"
    tar czf "$OUT/run-example.tgz" "$out" ;;
*) echo "unknown step $s (kernels | pool | recall | quality | decode | llama | checks | fused | verify | coldab | peers | profile | gemv | testgpu | standard | queue | example)"; exit 2 ;;
esac; done
# At most 8 files come back: one tarball of everything replaces the per-step ones (which stay
# only when the call is cut short before this line).
if [ -d "$OUT/results" ]; then
    tar czf "$OUT/all-results.tgz" --exclude='.triton-*' --exclude=leases -C "$OUT" \
        results $([ -d "$OUT/reports" ] && echo reports) &&
        rm -rf "$OUT/results" "$OUT/reports" "$OUT"/results-*.tgz
fi
