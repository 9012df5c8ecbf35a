#!/bin/bash
# The issue-22 pair-accuracy runs, one process at a time (nice 19, one thread), resumable: every finished
# (pair, method) under benchmarks/results/pair_accuracy_<name>_<N>mm/ is skipped when its key matches.
# Runs from a clone at a fixed commit (COPY, default /tmp/smgic-bench; made from this repository if missing),
# so edits in the shared working tree do not reach a run; results go to this repository's benchmarks/results.
# Order: the cheap methods on every pair, full SyN (about 20-60 min a pair at 2 mm on 2 shared cores),
# FireANTs (CPU), the demo's Colin27 pairs (3 subjects, 6 pairs, every method), the 1 mm table without SyN, the separate table of pairs among TRAINING maps 01-04.
#   nohup benchmarks/pair_accuracy_queue.sh > /tmp/bench_queue.log 2>&1 &
REPO=$(cd "$(dirname "$0")/.." && pwd)
COPY=${COPY:-/tmp/smgic-bench}
[ -d "$COPY/.git" ] || git clone -q "$REPO" "$COPY" || exit 1
cd "$COPY" || exit 1
L=${LABEL_MAPS:-$(dirname "$REPO")/shared/data/synthseg_label_maps}
HELD="$L/training_seg_13.nii.gz $L/training_seg_14.nii.gz $L/training_seg_15.nii.gz"
TRAIN="$L/training_seg_01.nii.gz $L/training_seg_02.nii.gz $L/training_seg_03.nii.gz $L/training_seg_04.nii.gz"
PA="nice -n 19 env PYTHONPATH=$COPY OMP_NUM_THREADS=1 ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS=1 $REPO/.venv/bin/python
    benchmarks/pair_accuracy.py --versions 2 --threads 1 --out-dir $REPO/benchmarks/results"
CHEAP="smgicnet smgicnet-net smgicnet-affine synquick identity"
W=${WORK:-/tmp}
$PA --label-maps $HELD --voxel-mm 2 --name heldout22 --work-dir $W/bench_work_2mm --methods $CHEAP
$PA --label-maps $HELD --voxel-mm 2 --name heldout22 --work-dir $W/bench_work_2mm --methods syn
$PA --label-maps $HELD --voxel-mm 2 --name heldout22 --work-dir $W/bench_work_2mm --methods fireants
$PA --colin27 3 --voxel-mm 2 --name colin27 --work-dir $W/bench_work_c27_2mm --methods $CHEAP smgicnet-fast fireants syn
$PA --label-maps $HELD --voxel-mm 1 --name heldout22 --work-dir $W/bench_work_1mm --methods $CHEAP smgicnet-fast
$PA --label-maps $TRAIN --max-pairs 12 --voxel-mm 2 --name training22 --work-dir $W/bench_work_train_2mm \
    --methods $CHEAP syn
