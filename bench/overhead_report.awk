# bench/overhead_report.awk: summarise proxy_overhead.sh's per-run TSV (one row per sysbench run:
# test ps threads target rep qps p95_ms errors queries trace_lines proxy_cpu_us_per_q) as medians
# and ratios.
# usage: awk -v targets="direct haproxy rt rt_trace rt_guard" -v repeats=3 -v duration=5 \
#            -f bench/overhead_report.awk RAW.tsv

function med(s,    a, n, i, j, t) {
	n = split(s, a, " ")
	if (n == 0)
		return ""
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) {
			t = a[j]; a[j] = a[j - 1]; a[j - 1] = t
		}
	return n % 2 ? a[(n + 1) / 2] + 0 : (a[n / 2] + a[n / 2 + 1]) / 2
}

# spread of the runs of one cell: (max - min) / median
function spread(s,    a, n, i, lo, hi, m) {
	n = split(s, a, " ")
	if (n < 2)
		return -1
	lo = hi = a[1] + 0
	for (i = 2; i <= n; i++) {
		if (a[i] + 0 < lo) lo = a[i] + 0
		if (a[i] + 0 > hi) hi = a[i] + 0
	}
	m = med(s)
	return m > 0 ? (hi - lo) / m : -1
}

function has(t) { return (t in present) }

# ratio column: num/den for this config, accumulated for the geometric mean
function ratio(k, num, den, name,    a, b) {
	if (!has(num) || !has(den)) return ""
	a = med(q[k, num]); b = med(q[k, den])
	if (a == "" || b == "" || a <= 0 || b <= 0) { printf " %14s", "n/a"; return }
	lg[name] += log(a / b); ng[name]++
	printf " %14.3f", a / b
}

BEGIN { FS = "\t"; nt = split(targets, tl, " ") }
NR > 1 {
	k = $1 SUBSEP $2 SUBSEP $3
	if (!(k in seen)) { seen[k]; order[++nk] = k }
	present[$4]
	if ($6 != "NA" && $6 != "") { q[k, $4] = q[k, $4] " " $6; l[k, $4] = l[k, $4] " " $7; qr[k, $4, $5] = $6 }
	else failed[$4]++
	if ($11 != "NA" && $11 != "") { cpu[k, $4] = cpu[k, $4] " " $11; cput[$4] }
	if ($8 != "NA" && $8 + 0 > 0) errs[$4] += $8
	if ($10 != "NA" && $10 != "") { tlines[$4] += $10; tq[$4] += $9 }
}
END {
	printf "QPS (median of %s x %ss runs; oltp_read_write counts every statement incl. BEGIN/COMMIT)\n", repeats, duration
	printf "%-18s %-7s %4s |", "test", "ps", "thr"
	for (i = 1; i <= nt; i++) printf " %10s", tl[i]
	print ""
	for (r = 1; r <= nk; r++) {
		k = order[r]; split(k, f, SUBSEP)
		printf "%-18s %-7s %4s |", f[1], f[2], f[3]
		for (i = 1; i <= nt; i++) { m = med(q[k, tl[i]]); printf (m == "" ? " %10s" : " %10.0f"), (m == "" ? "-" : m) }
		print ""
	}
	printf "\np95 latency, ms (median; per transaction for oltp_read_write)\n"
	printf "%-18s %-7s %4s |", "test", "ps", "thr"
	for (i = 1; i <= nt; i++) printf " %10s", tl[i]
	print ""
	for (r = 1; r <= nk; r++) {
		k = order[r]; split(k, f, SUBSEP)
		printf "%-18s %-7s %4s |", f[1], f[2], f[3]
		for (i = 1; i <= nt; i++) { m = med(l[k, tl[i]]); printf (m == "" ? " %10s" : " %10.2f"), (m == "" ? "-" : m) }
		print ""
	}
	printf "\nQPS ratios (medians of this run; spread = largest (max-min)/median of any target's runs)\n"
	printf "%-18s %-7s %4s |", "test", "ps", "thr"
	split("haproxy/direct rt/haproxy rt/direct trace/rt guard/trace A/A-control", hdr, " ")
	split("haproxy direct rt haproxy rt direct rt_trace rt rt_guard rt_trace haproxy2 haproxy", pair, " ")
	for (c = 1; c <= 6; c++) if (has(pair[2 * c - 1]) && has(pair[2 * c])) { col[c] = 1; printf " %14s", hdr[c] }
	printf " %7s\n", "spread"
	for (r = 1; r <= nk; r++) {
		k = order[r]; split(k, f, SUBSEP)
		printf "%-18s %-7s %4s |", f[1], f[2], f[3]
		for (c = 1; c <= 6; c++) if (col[c]) ratio(k, pair[2 * c - 1], pair[2 * c], hdr[c])
		sp = 0
		for (i = 1; i <= nt; i++) { s = spread(q[k, tl[i]]); if (s > sp) sp = s }
		allsp[r] = sp
		printf (repeats > 1 ? " %6.0f%%\n" : " %7s\n"), (repeats > 1 ? 100 * sp : "-")
	}
	printf "%-18s %-7s %4s |", "geometric mean", "", ""
	for (c = 1; c <= 6; c++) if (col[c]) {
		if (ng[hdr[c]] > 0) printf " %14.3f", exp(lg[hdr[c]] / ng[hdr[c]]); else printf " %14s", "n/a"
	}
	# median spread over configurations: the noise floor to compare ratios against
	ss = ""; for (r = 1; r <= nk; r++) ss = ss " " allsp[r]
	printf (repeats > 1 ? " %6.0f%%\n" : " %7s\n"), (repeats > 1 ? 100 * med(ss) : "-")
	print ""
	paired_table("rt", "haproxy", "issue 2")
	paired_table("haproxy2", "haproxy", "A/A control: the same haproxy twice, how often noise alone gives a verdict")
	cpu_table()
	print "targets (issue): rt/haproxy >= 1.0 in every row (#2; read beside the control, see bench/README); trace/rt >= 0.90 (#4); guard/trace ~ 1.0 within the spread (#5)"
	if (has("haproxy2"))
		print "A/A-control = haproxy2/haproxy, two identical haproxy processes: what this machine's noise alone does to a ratio and a verdict"
	for (t in tlines) {
		x = tq[t] > 0 ? tlines[t] / tq[t] : 0
		printf "%s: %d trace records for %d sysbench statements (%.3f per statement)%s\n", t, tlines[t], tq[t], x,
			(x < 0.99 ? "  WARNING: fewer records than statements (dropped, or tracing not on)" : "")
	}
	for (t in errs) printf "%s: %d sysbench ignored errors in total\n", t, errs[t]
	for (t in failed) printf "%s: %d runs FAILED (no result)\n", t, failed[t]
}

# Proxy CPU (user + system, every thread, from /proc) per sysbench statement: what relaying
# costs the proxy itself.  Much steadier than QPS on a shared machine, so a cost difference
# the QPS noise hides shows here.
function cpu_table(    r, k, f, i, m, nc, c, nr) {
	if (!("haproxy" in cput) || !("rt" in cput))
		return
	nr = split("rt" ("haproxy2" in cput ? " haproxy2" : ""), rnum, " ")
	printf "proxy CPU per statement, us (median; user + system of the proxy process)\n"
	printf "%-18s %-7s %4s |", "test", "ps", "thr"
	for (i = 1; i <= nt; i++) if (tl[i] in cput) { printf " %10s", tl[i]; nc++ }
	for (c = 1; c <= nr; c++) printf " %18s", rnum[c] "/haproxy cpu"
	print ""
	for (r = 1; r <= nk; r++) {
		k = order[r]; split(k, f, SUBSEP)
		printf "%-18s %-7s %4s |", f[1], f[2], f[3]
		for (i = 1; i <= nt; i++) if (tl[i] in cput) { m = med(cpu[k, tl[i]]); printf (m == "" ? " %10s" : " %10.1f"), (m == "" ? "-" : m) }
		for (c = 1; c <= nr; c++) cpu_ratio(k, rnum[c])
		print ""
	}
	printf "%-18s %-7s %4s |%*s", "geometric mean", "", "", 11 * nc, ""
	for (c = 1; c <= nr; c++) printf (ncpu[rnum[c]] > 0 ? " %18.3f" : " %18s"), (ncpu[rnum[c]] > 0 ? exp(lcpu[rnum[c]] / ncpu[rnum[c]]) : "n/a")
	print "\n"
}

# one NUM/haproxy CPU ratio cell, accumulated for the geometric mean
function cpu_ratio(k, num,    a, b) {
	a = med(cpu[k, num]); b = med(cpu[k, "haproxy"])
	if (a == "" || b == "" || a <= 0 || b <= 0) { printf " %18s", "n/a"; return }
	lcpu[num] += log(a / b); ncpu[num]++
	printf " %18.3f", a / b
}

# NUM/DEN paired by repeat: in each repeat the targets run back to back, so the two runs of a
# pair share the machine's state of the moment more than any two medians do.  A row is "ahead"
# only when every pair is >= 1.0, "behind" when every pair is < 1.0; anything else is parity
# within this machine's noise, which the medians alone cannot tell apart.  Then all pairs of all
# rows pooled: how many are >= 1.0, the two-sided sign test's p (the chance of a split at least
# this lopsided if NUM and DEN were the same program), and the pairs' geometric mean with its 95 %
# confidence interval (t on the log ratios): how far apart the two can be, given this noise.
function paired_table(num, den, title,    r, k, f, rep, s, n, lo, hi, x, ahead, behind, even, all, nall, up, sl, sl2, m, sd, h, v) {
	if (!(den in present) || !(num in present) || repeats < 2)
		return
	printf "%s/%s per repeat (%s; paired runs: lowest, median, highest; verdict)\n", num, den, title
	for (r = 1; r <= nk; r++) {
		k = order[r]; split(k, f, SUBSEP)
		s = ""; n = 0
		for (rep = 1; rep <= repeats; rep++)
			if ((k, num, rep) in qr && (k, den, rep) in qr && qr[k, den, rep] > 0) {
				x = qr[k, num, rep] / qr[k, den, rep]
				if (n == 0 || x < lo) lo = x
				if (n == 0 || x > hi) hi = x
				s = s " " x; n++
				all = all " " x; nall++; if (x >= 1) up++
				sl += log(x); sl2 += log(x) ^ 2
			}
		if (n == 0) continue
		printf "%-18s %-7s %4s | %6.3f %6.3f %6.3f  %s\n", f[1], f[2], f[3], lo, med(s), hi,
			lo >= 1 ? num " ahead" : hi < 1 ? num " behind" : "parity within noise"
		if (lo >= 1) ahead++; else if (hi < 1) behind++; else even++
	}
	printf "rows: %d %s ahead, %d parity within noise, %d %s behind\n", ahead, num, even, behind, num
	if (nall < 2)
		return
	m = sl / nall; sd = sqrt((sl2 - nall * m * m) / (nall - 1)); h = t95(nall - 1) * sd / sqrt(nall)
	printf "all pairs: %d of %d >= 1.0, median %.3f, sign test p = %.3f; geometric mean %.3f, 95%% CI %.3f-%.3f\n",
		up, nall, med(all), sign_p(up, nall), exp(m), exp(m - h), exp(m + h)
	if (m + h < 0) v = num " measurably slower than " den
	else if (m - h > 0) v = num " measurably faster than " den
	else v = "no measurable difference between " num " and " den " (the interval holds 1.0)"
	printf "overall: %s\n\n", v
}

# Student's t, two-sided 95 %, for DF degrees of freedom (Cornish-Fisher; within 2 % from DF 4)
function t95(df,    z) {
	z = 1.959964
	return z + (z ^ 3 + z) / (4 * df) + (5 * z ^ 5 + 16 * z ^ 3 + 3 * z) / (96 * df ^ 2)
}

# two-sided sign test: P(a split at least as uneven as k of n | p = 1/2)
function sign_p(k, n,    i, t, tail, m) {
	m = k < n - k ? k : n - k
	t = 2 ^ -n
	for (i = 0; i <= m; i++) { tail += t; t = t * (n - i) / (i + 1) }
	return 2 * tail > 1 ? 1 : 2 * tail
}
