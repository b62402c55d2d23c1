#!/bin/sh
# make check, when ./configure found Open MPI (issue 17; docs/determinism.md "Many processes"):
# `mpirun -n R flowrl train` writes the audit.log of a run without MPI, record for record.
#   pretrain at R = 2, 3 (the checkpoint's bytes; the x0 heads at R = 3) and resumed from R = 2 at 3;
#   the update's bytes at R = 2;
#   Flow-GRPO and AWM at R = 1, 2, 3 (AWM also on cuda-emu at R = 2); every registered algorithm at R = 2 (the GFlowNets, which
#   train on an environment, refuse mpirun with one line); a reward program
#   (each rank scores its own groups with its own program) at R = 2; a run resumed with another
#   R; an error of rank 1 alone stopping every rank with one line naming it.
# Usage: tests/check_mpi.sh FLOWRL MPIRUN   (tiny gmm2d runs; well under a minute)
set -u
F=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
MPIRUN=$2
SRC=$(cd "$(dirname "$0")/.." && pwd)
# what Open MPI needs as root and in a container: shared memory without CMA, no core binding
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_hwloc_base_binding_policy=none
export OMPI_MCA_plm_rsh_agent=false

T=$(mktemp -d) || exit 1
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
fails=0
checks=0
fail() { echo "check_mpi: FAIL: $*" >&2; fails=$((fails + 1)); }

mpi() { # mpi R ARGS...: flowrl under mpirun with R ranks, killed after 120 s
    r=$1
    shift
    # Under make check-asan, LeakSanitizer reports Open MPI's own allocations (ompi_op_base_op_select,
    # MCA components unloaded at exit, so their frames cannot be suppressed by name): no leak check
    # in processes that joined MPI. flowrl's code paths are leak-checked by the runs without mpirun.
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" timeout 120 "$MPIRUN" --oversubscribe -n "$r" "$F" "$@"
}

# same A B: B's audit.log has A's records through every step
same() {
    checks=$((checks + 1))
    out=$("$F" audit "$1/audit.log" "$2/audit.log" 2>&1)
    n=$(grep -c '^[{]' "$1/metrics.jsonl")
    echo "$out" | grep -q "^identical through step $n " || fail "$2 differs from $1: $(echo "$out" | grep -v '^note' | tr '\n' ' ')"
}

"$F" pretrain --task gmm2d --out base.safetensors --max-train-steps 30 --hidden 16 --ffn 32 --blocks 1 >/dev/null 2>&1 ||
    { echo "check_mpi: pretrain failed" >&2; exit 1; }
# the epsilon base of the algorithms whose base_pred is epsilon (flowrl algos --json)
"$F" pretrain --task gmm2d --pred epsilon --out eps.safetensors --max-train-steps 30 --hidden 16 --ffn 32 --blocks 1 >/dev/null 2>&1 ||
    { echo "check_mpi: pretrain --pred epsilon failed" >&2; exit 1; }
eps_algos=$("$F" algos --json | python3 -c 'import json, sys
print(" ".join(a["name"] for a in json.load(sys.stdin)["algos"] if a.get("base_pred") == "epsilon"))') ||
    { echo "check_mpi: flowrl algos --json failed" >&2; exit 1; }
[ -n "$eps_algos" ] || { echo "check_mpi: flowrl algos --json lists no epsilon algorithm" >&2; exit 1; }
# the algorithms that train on an environment (trains_on "env": GFlowNets, control)
env_algos=$("$F" algos --json | python3 -c 'import json, sys
print(" ".join(a["name"] for a in json.load(sys.stdin)["algos"] if a.get("trains_on") == "env"))') ||
    { echo "check_mpi: flowrl algos --json failed" >&2; exit 1; }
# a preference file of each base, for the algorithms whose --prefs is required (flowrl algos --json prefs)
prefs_algos=$("$F" algos --json | python3 -c 'import json, sys
print(" ".join(a["name"] for a in json.load(sys.stdin)["algos"] if a.get("prefs") == "required"))') ||
    { echo "check_mpi: flowrl algos --json failed" >&2; exit 1; }
for b in base eps; do
    "$F" prefs make --ckpt $b.safetensors --task gmm2d --pairs 16 --num-steps 4 --out prefs-$b.safetensors --progress off \
        >/dev/null 2>&1 || { echo "check_mpi: prefs make from $b.safetensors failed" >&2; exit 1; }
done
needs_prefs() {
    case " $prefs_algos " in *" $1 "*) return 0 ;; esac
    return 1
}
# pretrain under mpirun (each rank its rows of the batch, its rows of dW and its share of AdamW): the checkpoint bytes of
# the run without MPI at R = 2 and 3, the epsilon base at R = 2, and a resume from R = 2 to R = 3
for r in 2 3; do
    checks=$((checks + 1))
    mpi $r pretrain --task gmm2d --out base.R$r.safetensors --max-train-steps 30 --hidden 16 --ffn 32 --blocks 1 \
        --checkpoint-every 20 >pre.R$r.log 2>&1 || { fail "pretrain R=$r: $(tail -n 3 pre.R$r.log)"; continue; }
    cmp -s base.safetensors base.R$r.safetensors || fail "pretrain R=$r: the checkpoint differs from the run without MPI"
done
checks=$((checks + 1))
mpi 2 pretrain --task gmm2d --pred epsilon --out eps.R2.safetensors --max-train-steps 30 --hidden 16 --ffn 32 --blocks 1 \
    >pre.eps.log 2>&1 || fail "pretrain --pred epsilon R=2: $(tail -n 3 pre.eps.log)"
cmp -s eps.safetensors eps.R2.safetensors || fail "pretrain --pred epsilon R=2: the checkpoint differs from the run without MPI"
# the x0 heads (the head's op over all rows after x̂0's gather), at R = 3 (128 rows split 43, 43, 42)
for p in velocity epsilon; do
    checks=$((checks + 1))
    a="pretrain --task gmm2d --pred $p --head x0 --max-train-steps 10 --hidden 16 --ffn 32 --blocks 1"
    "$F" $a --out x0.$p.safetensors >/dev/null 2>&1 || { fail "pretrain --pred $p --head x0 without MPI"; continue; }
    mpi 3 $a --out x0.$p.R3.safetensors >x0.$p.log 2>&1 || { fail "pretrain --pred $p --head x0 R=3: $(tail -n 3 x0.$p.log)"; continue; }
    cmp -s x0.$p.safetensors x0.$p.R3.safetensors || fail "pretrain --pred $p --head x0 R=3: the checkpoint differs from the run without MPI"
done
checks=$((checks + 1))
mpi 3 pretrain --task gmm2d --out base.resumed.safetensors --max-train-steps 30 --hidden 16 --ffn 32 --blocks 1 \
    --resume base.R2-step000020.safetensors >pre.resume.log 2>&1 || fail "pretrain resumed at R=3: $(tail -n 3 pre.resume.log)"
cmp -s base.safetensors base.resumed.safetensors || fail "pretrain resumed from R=2 at R=3: the checkpoint differs"

# 3 prompts x 4 samples: R = 2 and 3 split the groups unevenly
common="--base base.safetensors --task gmm2d --prompts-per-epoch 3 --group-size 4 --num-batches 2 --eval-n 0 --seed 11 --backend opt --threads 1"

for algo in flow-grpo awm; do
    args="--algo $algo $common --num-steps 4 --epochs 3"
    "$F" train $args --out $algo.plain >/dev/null 2>&1 || fail "$algo without mpirun"
    for r in 1 2 3; do
        mpi $r train $args --out $algo.R$r >$algo.R$r.log 2>&1 || { fail "$algo R=$r: $(tail -n 3 $algo.R$r.log)"; continue; }
        same $algo.plain $algo.R$r
    done
done

# the update split by sample: rank 0's dist.update_recv_bytes of flow-grpo's first epoch at R = 2 is
# the formula of docs/determinism.md "Many processes": the parameters 4·(|W| + 3·|P|)/2 =
# 4·(1856 + 3·2162)/2 = 16684, plus the activations and output gradients of the policy's 36
# update rows (rank 0 receives 18 of them): 4·18·(r_f + r_b), r_f = (2·1+3)·16 + 1·32 + 2·1 + 32 + 2
# + 2 = 150 and r_b = (1+2)·16 + 1·32 = 80 floats a row (H 16, F 32, E 32, D 2, one block): 33244
checks=$((checks + 1))
got=$(python3 -c 'import json, sys; print(int(json.loads(open(sys.argv[1]).readline())["dist.update_recv_bytes"]))' \
    flow-grpo.R2/metrics.jsonl 2>/dev/null)
[ "$got" = 33244 ] || fail "flow-grpo R=2: dist.update_recv_bytes of epoch 1 is '$got', expected 33244 (16684 + 16560)"

# the split update on the cuda kernels (cuda-emu: device memory guarded outside launches), R = 2
args="--algo awm $common --num-steps 4 --epochs 2"
mpi 2 train $args --backend cuda-emu --out awm.emu.R2 >awm.emu.R2.log 2>&1 || fail "awm cuda-emu R=2: $(tail -n 3 awm.emu.R2.log)"
"$F" train $args --out awm.2ep >/dev/null 2>&1 || fail "awm 2 epochs without mpirun"
same awm.2ep awm.emu.R2

# LoRA at R = 2: the policy is an adapter view (the dW split is off, AdamW's shares still split)
checks=$((checks + 1))
args="--algo flow-grpo $common --num-steps 4 --epochs 2 --lora-rank 2"
"$F" train $args --out lora.plain >/dev/null 2>&1 || fail "flow-grpo --lora-rank 2 without mpirun"
mpi 2 train $args --out lora.R2 >lora.R2.log 2>&1 || fail "flow-grpo --lora-rank 2 R=2: $(tail -n 3 lora.R2.log)"
same lora.plain lora.R2

# every registered algorithm at R = 2 (flow-grpo and awm above)
for algo in $("$F" algos | awk '/^[a-z]/ {print $1}'); do
    [ "$algo" = flow-grpo ] || [ "$algo" = awm ] && continue
    # (the algorithms that train on an environment do not shard their trajectories yet: mpirun
    # is refused with one line, before anything is written; --env: the first of the algorithm's kind;
    # rank 0 may still be exiting when mpirun aborts the job on rank 1's exit status, and its
    # SIGTERM notice is not a second refusal)
    case " $env_algos " in *" $algo "*)
        checks=$((checks + 1))
        mpi 2 train --algo "$algo" --epochs 1 --out $algo.R2 >$algo.R2.out 2>$algo.R2.err
        rc=$?
        if [ $rc = 0 ] || [ $rc = 124 ] || [ "$(grep -c '^flowrl train: --algo '"$algo"' trains on an environment and does not shard its trajectories over MPI ranks yet' $algo.R2.err)" != 1 ] ||
            [ "$(grep '^flowrl' $algo.R2.err | grep -vc '^flowrl train: stopping after this epoch')" != 1 ] ||
            [ -e $algo.R2/config.json ]; then
            fail "$algo R=2: exit $rc, expected one line refusing mpirun in: $(cat $algo.R2.err)"
        fi
        continue ;;
    esac
    # (DGPO: whole prompt groups per micro-batch, and --trunc-steps 6 < T)
    args="--algo $algo $common --prompts-per-epoch 4 --num-steps 8 --epochs 2"
    # (BranchGRPO: the group is the tree's leaves, 2 splits of width 2 = 4)
    [ "$algo" = branch-grpo ] && args="$args --tree-split-points 0,3"
    # (an epsilon base where base_pred says so: DDPO, D3PO, SPO, Diffusion-DPO, Diffusion-DRO, ...)
    b=base
    case " $eps_algos " in *" $algo "*) b=eps ;; esac
    args=$(echo "$args" | sed "s/--base base.safetensors/--base $b.safetensors/")
    # (Diffusion-DPO, Diffusion-DRO: from a preference file of their base; every rank reads it and computes alike)
    needs_prefs "$algo" && args="$args --prefs prefs-$b.safetensors"
    # (Diffusion-DRO: one optimiser step per epoch, as its default of 16 micro-batches)
    [ "$algo" = diffusion-dro ] && args="$args --grad-accum 2"
    # (the reward-gradient algorithms: one optimiser step over the epoch's micro-batches, --grad-accum = --num-batches)
    case $algo in draft | alignprop | refl) args="$args --grad-accum 2" ;; esac
    "$F" train $args --out $algo.plain >/dev/null 2>&1 || { fail "$algo without mpirun"; continue; }
    mpi 2 train $args --out $algo.R2 >$algo.R2.log 2>&1 || { fail "$algo R=2: $(tail -n 3 $algo.R2.log)"; continue; }
    same $algo.plain $algo.R2
done

# resume with another R: 2 epochs at R = 2, then to 3 at R = 3 (and AWM, whose EMA state
# travels in the checkpoint, from R = 3 to R = 1), equal to the uninterrupted runs above
args="--algo flow-grpo $common --num-steps 4"
mpi 2 train $args --epochs 2 --out fg.resume >/dev/null 2>&1 || fail "flow-grpo R=2, 2 epochs"
mpi 3 train --resume fg.resume --epochs 3 >fg.resume.log 2>&1 || fail "flow-grpo resumed at R=3: $(tail -n 3 fg.resume.log)"
same flow-grpo.plain fg.resume
args="--algo awm $common --num-steps 4"
mpi 3 train $args --epochs 2 --out awm.resume >/dev/null 2>&1 || fail "awm R=3, 2 epochs"
"$F" train --resume awm.resume --epochs 3 >awm.resume.log 2>&1 || fail "awm resumed without mpirun: $(tail -n 3 awm.resume.log)"
same awm.plain awm.resume

# a reward program: each rank runs its own on its own groups
cat >reward.sh <<EOF
#!/bin/sh
exec python3 "$SRC/tests/reward_progs/mock_reward.py" ok
EOF
cat >reward_rank1.sh <<EOF
#!/bin/sh
[ "\${OMPI_COMM_WORLD_RANK:-0}" = 1 ] && exec python3 "$SRC/tests/reward_progs/mock_reward.py" nan
exec python3 "$SRC/tests/reward_progs/mock_reward.py" ok
EOF
chmod +x reward.sh reward_rank1.sh
args="--algo flow-grpo $common --num-steps 3 --epochs 2"
"$F" train $args --reward "cmd:$T/reward.sh" --out cmd.plain >/dev/null 2>&1 || fail "reward program without mpirun"
mpi 2 train $args --reward "cmd:$T/reward.sh" --out cmd.R2 >cmd.R2.log 2>&1 || fail "reward program R=2: $(tail -n 3 cmd.R2.log)"
same cmd.plain cmd.R2

# rank 1's reward program fails: every rank stops, one line names rank 1 (rank 0 may still be
# exiting when mpirun aborts the job on rank 1's exit status: its SIGTERM notice is not a second error)
checks=$((checks + 1))
mpi 2 train $args --reward "cmd:$T/reward_rank1.sh" --out bad >bad.out 2>bad.err
rc=$?
n=$(grep -c '^flowrl train: .*(rank 1 of 2)$' bad.err)
if [ $rc = 0 ] || [ $rc = 124 ] || [ "$n" != 1 ] ||
    [ "$(grep '^flowrl' bad.err | grep -vc '^flowrl train: stopping after this epoch')" != 1 ]; then
    fail "an error of rank 1: exit $rc, expected one line naming rank 1 in: $(cat bad.err)"
fi

# FLOWRL_NCCL=1 (GPU-to-GPU gathers, gpu/cuda_nccl.cu) on a CPU backend: refused on every rank, one line
checks=$((checks + 1))
FLOWRL_NCCL=1 mpi 2 pretrain --task gmm2d --out nccl.safetensors --max-train-steps 3 --hidden 16 --ffn 32 \
    --blocks 1 --backend opt >nccl.out 2>nccl.err
rc=$?
if [ $rc = 0 ] || [ $rc = 124 ] || [ "$(grep -c '^flowrl pretrain: FLOWRL_NCCL=1 gathers between GPUs: it needs --backend cuda (this run: opt) (rank 0 of 2)$' nccl.err)" != 1 ] ||
    [ "$(grep -c '^flowrl' nccl.err)" != 1 ] || [ -e nccl.safetensors ]; then
    fail "FLOWRL_NCCL=1 on opt: exit $rc, expected one line refusing it in: $(cat nccl.err)"
fi

if [ $fails -gt 0 ]; then
    echo "check_mpi: $fails failures (runs that failed, or audit logs that differ)" >&2
    exit 1
fi
echo "check_mpi: $checks checks passed (mpirun -n 1, 2, 3: audit.log equal to runs without MPI)"
