#!/bin/bash
# The issue-22 pair-accuracy runs in two lanes (one process each, nice 19, one thread), resumable across sessions and
# machines: every finished (pair, method) under benchmarks/results/pair_accuracy_<name>_<N>mm/ is skipped when its
# key matches, and the subjects are the same on every CPU (benchmarks/pair_subjects.py).
# Runs from a clone (COPY, default /tmp/smgic-bench-<lane>) checked out at this repository's HEAD when the lane starts,
# so edits in the shared working tree do not reach a run; results go to this repository's benchmarks/results.
#   lane a: the cheap methods (SyNQuick, SM-GICNet's stages and presets) at 2 mm (the table with full SyN), held-out
#           maps then Colin27, full SyN on the last 3 Colin27 pairs at 2 mm (lane b runs the first 3 after the 12
#           held-out ones; --pairs, so no pair is computed by both lanes), FireANTs at 2 mm (about 1-2 CPU min a
#           pair, so that the 2 mm tables hold every method), the cheap methods at 1 mm, then the separate table
#           of pairs among TRAINING maps 01-04;
#   lane b: full SyN at 2 mm first (the headline comparison; about 10 CPU min a pair; 1 mm, about 60, does not fit),
#           then FireANTs at 1 mm (about 10-50 CPU min a pair), held-out maps then Colin27.
#   nohup benchmarks/pair_accuracy_queue.sh a > /tmp/bench_a.log 2>&1 &
#   nohup benchmarks/pair_accuracy_queue.sh b > /tmp/bench_b.log 2>&1 &
LANE=${1:?lane a or b}
REPO=$(cd "$(dirname "$0")/.." && pwd)
COPY=${COPY:-/tmp/smgic-bench-$LANE}
[ -d "$COPY/.git" ] || git clone -q "$REPO" "$COPY" || exit 1
cd "$COPY" && git fetch -q "$REPO" HEAD && git checkout -q --detach FETCH_HEAD || exit 1
L=${LABEL_MAPS:-$(dirname "$REPO")/shared/data/synthseg_label_maps}
HELD="--label-maps $L/training_seg_13.nii.gz $L/training_seg_14.nii.gz $L/training_seg_15.nii.gz"
TRAIN="--label-maps $L/training_seg_01.nii.gz $L/training_seg_02.nii.gz $L/training_seg_03.nii.gz $L/training_seg_04.nii.gz"
PA="nice -n 19 env PYTHONPATH=$COPY OMP_NUM_THREADS=1 ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS=1 $REPO/.venv/bin/python
    benchmarks/pair_accuracy.py --versions 2 --threads 1 --out-dir $REPO/benchmarks/results"
CHEAP="synquick identity smgicnet smgicnet-net smgicnet-affine smgicnet-fast smgicnet-best"
W=${WORK:-/tmp}/bench-$LANE
if [ "$LANE" = a ]; then
    $PA $HELD --voxel-mm 2 --name issue22 --work-dir $W/held_2mm --methods $CHEAP
    $PA --colin27 3 --voxel-mm 2 --name issue22-colin27 --work-dir $W/c27_2mm --methods $CHEAP
    $PA --colin27 3 --voxel-mm 2 --name issue22-colin27 --work-dir $W/c27_2mm --methods syn \
        --pairs c2_to_c3 c3_to_c1 c3_to_c2
    $PA $HELD --voxel-mm 2 --name issue22 --work-dir $W/held_2mm --methods fireants
    $PA --colin27 3 --voxel-mm 2 --name issue22-colin27 --work-dir $W/c27_2mm --methods fireants
    $PA $HELD --voxel-mm 1 --name issue22 --work-dir $W/held_1mm --methods $CHEAP
    $PA --colin27 3 --voxel-mm 1 --name issue22-colin27 --work-dir $W/c27_1mm --methods $CHEAP
    $PA $TRAIN --max-pairs 12 --voxel-mm 2 --name issue22-training --work-dir $W/train_2mm --methods smgicnet synquick syn
else
    $PA $HELD --voxel-mm 2 --name issue22 --work-dir $W/held_2mm --methods syn
    $PA --colin27 3 --voxel-mm 2 --name issue22-colin27 --work-dir $W/c27_2mm --methods syn \
        --pairs c1_to_c2 c1_to_c3 c2_to_c1
    $PA $HELD --voxel-mm 1 --name issue22 --work-dir $W/held_1mm --methods fireants
    $PA --colin27 3 --voxel-mm 1 --name issue22-colin27 --work-dir $W/c27_1mm --methods fireants
fi
