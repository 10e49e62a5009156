#!/bin/sh
# A training program in no particular language: it prints progress and, for
# runlog, one JSON line per metric. Run it recorded with:
#   runlog run --note "try lr 0.3" -- ./examples/train.sh 0.3
LR=${1:-0.1}
EPOCHS=${2:-5}
awk -v lr="$LR" -v epochs="$EPOCHS" 'BEGIN {
  loss = 2.0
  for (e = 1; e <= epochs; e++) {
    loss = loss * (1 - lr) + 0.05
    acc = 1 - loss / 2.5
    printf "epoch %d/%d loss %.4f\n", e, epochs, loss
    printf "{\"metric\": \"loss\", \"value\": %.4f, \"step\": %d}\n", loss, e
    printf "{\"metric\": \"acc\", \"value\": %.4f, \"step\": %d}\n", acc, e
  }
}'
