#!/usr/bin/env bash
# The imbalance study of issue 32, one pretraining run at a time: the `cpu` preset, `midol`, each routing option, on
# SynthMed-5 drawn with Table 1's mix and on the MedMNIST files of a folder; seed 0 of everything first, then seeds 1
# and 2. A finished run (summary.json) is skipped, an interrupted one resumes. Outputs and logs in runs/imbalance/.
#   nohup bash benchmarks/imbalance_queue.sh <folder of MedMNIST .npz files> > runs/imbalance/queue.log 2>&1 &
# Then: python benchmarks/imbalance.py   (the table and figures of the runs finished so far)
# SEEDS="1" and SEEDS="2" in two shells run two queues side by side (one thread each) without touching the same run;
# OPTIONS and DATASETS pick others, e.g. the search: SEEDS=0 DATASETS=medmnist3 OPTIONS="unbalanced-lambda2 ema-floor0.75".
set -u
cd "$(dirname "$0")/.."
MEDMNIST=${1:?usage: imbalance_queue.sh <folder of MedMNIST .npz files>}
PY=${PY:-.venv/bin/python}
OUT=runs/imbalance
mkdir -p "$OUT"
export OMP_NUM_THREADS=1 PYTHONHASHSEED=0
declare -A OPTION=(
  [uniform]='{}'
  [ema]='{"routing_prior": "ema"}'
  [unbalanced]='{"routing_prior": "unbalanced"}'
  [source]='{"balance": "source"}'
  # the search around the two priors (seed 0 first; see BENCHMARKS.md): the KL strength λ, the EMA's floor
  [unbalanced-lambda2]='{"routing_prior": "unbalanced", "prior_lambda": 2.0}'
  [unbalanced-lambda50]='{"routing_prior": "unbalanced", "prior_lambda": 50.0}'
  [ema-floor0.75]='{"routing_prior": "ema", "prior_floor": 0.75}'
  [source-unbalanced]='{"balance": "source", "routing_prior": "unbalanced"}'
)
one_run() {  # dataset option seed
  local name="$1-$2-seed$3" extra=() overrides="${OPTION[$2]}"
  [ -f "$OUT/$name/summary.json" ] && return 0
  if [ "$1" = synthmed-paper ]; then overrides=$($PY -c "import json,sys; d=json.loads(sys.argv[1]); d['mix']='paper'; print(json.dumps(d))" "$overrides")
  else extra=(--data "medmnist:$MEDMNIST" --num-experts 3); fi
  echo "$(date -u +%FT%TZ) start $name"
  local t0=$(date +%s)
  $PY -m midol.pretrain --preset cpu --variant midol --seed "$3" --out-dir "$OUT/$name" "${extra[@]}" \
      --overrides "$overrides" > "$OUT/$name.log" 2>&1
  echo "$(date -u +%FT%TZ) end $name rc=$? wall=$(( $(date +%s) - t0 ))s"
}
for pass in 1 2; do   # a second pass retries a run that failed (e.g. while the tree was being edited)
  for seed in ${SEEDS:-0 1 2}; do
    for data in ${DATASETS:-synthmed-paper medmnist3}; do
      for option in ${OPTIONS:-uniform ema unbalanced source}; do one_run "$data" "$option" "$seed"; done
    done
  done
done
