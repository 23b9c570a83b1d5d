#!/usr/bin/env bash
# usage: TOKEN=<admin token> DATA=<copy of a data directory> BIN=<ansinh binary> docs/bench/online-rebuild.sh
# Starts serve on DATA, posts a rebuild of all read models, and until it ends asks
# every half second for a balance and /readyz; prints what it saw. Stops serve.
T=${TOKEN:?an admin token of the data directory (ansinh users token --name admin)}
DATA=${DATA:?a copy of a data directory}
BIN=${BIN:-ansinh}
U=http://127.0.0.1:18081
($BIN serve --data $DATA --addr 127.0.0.1:18081 > ${LOG:-/tmp/online-rebuild-serve.log} 2>&1 &)
sleep 4
CID=$(curl -s -H "Authorization: Bearer $T" "$U/v1/beneficiaries?q=nguyen&limit=1" | grep -o '"citizen_id":"[0-9]*' | head -1 | cut -d'"' -f4)
echo "cid=$CID"
start=$(date +%s.%N)
ID=$(curl -s -X POST -H "Authorization: Bearer $T" -H "Idempotency-Key: all-$(date +%s)" -H "Content-Type: application/json" $U/v1/rebuilds | grep -o '"rebuild_id":"[^"]*' | cut -d'"' -f4)
echo "rebuild $ID"
ok=0; bad=0; maxms=0; ready503=0
while :; do
  st=$(curl -s -H "Authorization: Bearer $T" $U/v1/rebuilds/$ID | grep -o '"state":"[a-z]*' | cut -d'"' -f4)
  [ "$st" != running ] && break
  r=$(curl -s -o /dev/null -w "%{http_code} %{time_total}" -H "Authorization: Bearer $T" "$U/v1/beneficiaries/$CID/balance")
  code=${r% *}; ms=$(echo "${r#* } * 1000 / 1" | bc)
  [ "$code" = 200 ] && ok=$((ok+1)) || bad=$((bad+1)); [ $ms -gt $maxms ] && maxms=$ms
  rc=$(curl -s -o /dev/null -w "%{http_code}" $U/readyz); [ "$rc" != 200 ] && ready503=$((ready503+1))
  sleep 0.5
done
end=$(date +%s.%N)
echo "state=$st elapsed=$(echo "$end - $start" | bc) s balance ok=$ok bad=$bad max=${maxms}ms readyz-not-200=$ready503"
curl -s -H "Authorization: Bearer $T" $U/v1/rebuilds/$ID; echo
ps -o rss= -p $(pgrep -f "serve --data $DATA") 
pkill -f "serve --data $DATA"
