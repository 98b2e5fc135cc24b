# Statement coverage of engine/ and host/ from a Go cover profile (go test
# -coverprofile); exits 1 when either is below min (awk -v min=85).
# A block listed more than once counts once, covered if any listing ran it.
NR == 1 { next }
{
  split($1, loc, ":")
  if (loc[1] ~ /^github\.com\/wre-dev\/wre\/engine\//) tree = "engine"
  else if (loc[1] ~ /^github\.com\/wre-dev\/wre\/host\//) tree = "host"
  else next
  if (!($1 in stmts)) { stmts[$1] = $2; owner[$1] = tree }
  if ($3 > 0) hit[$1] = 1
}
END {
  for (b in stmts) {
    total[owner[b]] += stmts[b]
    if (b in hit) covered[owner[b]] += stmts[b]
  }
  rc = 0
  split("engine host", trees, " ")
  for (i = 1; i <= 2; i++) {
    t = trees[i]
    if (!(t in total)) { printf "coverage %s/: no blocks in the profile\n", t; rc = 1; continue }
    pct = 100 * covered[t] / total[t]
    printf "coverage %s/: %.1f%% of %d statements (minimum %d%%)\n", t, pct, total[t], min
    if (pct < min) rc = 1
  }
  exit rc
}
