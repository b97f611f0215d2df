#!/usr/bin/env bash
# Latency over time of one run, fault windows shaded: DIR/latency.png by
# gnuplot when it is installed, else DIR/latency.svg written here with awk.
# Input: DIR/latency.txt ("t_s latency_ms f type", t from the worker's start;
# its header carries the start's realtime), DIR/timeline.txt ("start_epoch
# end_epoch kind detail").
set -u
DIR=$1
lat=$DIR/latency.txt
[[ -s $lat ]] || exit 1
t0=$(sed -n '1s/.*realtime_ns=\([0-9]*\).*/\1/p' "$lat")
[[ -n $t0 ]] || exit 1
# fault windows relative to the worker's start, in seconds
awk -v t0="$t0" '{printf "%.3f %.3f %s\n", $1 - t0 / 1e9, $2 - t0 / 1e9, $3}' "$DIR/timeline.txt" >"$DIR/faults.rel"
if command -v gnuplot >/dev/null 2>&1; then
	{
		echo "set terminal pngcairo size 1400,600 noenhanced" 2>/dev/null
		echo "set output '$DIR/latency.png'"
		echo "set title 'latency by operation (fault windows shaded, labelled)'"
		echo "set xlabel 'seconds since the clients started'; set ylabel 'latency (ms)'; set logscale y"
		echo "set key outside right"
		n=0
		while read -r a b kind; do
			n=$((n + 1))
			echo "set object $n rect from $a, graph 0 to $b, graph 1 fc rgb '#ffcccc' fs solid 0.4 noborder behind"
			echo "set label $n '$kind' at $a, graph 0.98 rotate by 90 right font ',7'"
		done <"$DIR/faults.rel"
		echo "plot '$lat' using 1:(strcol(4) eq \"ok\" ? \$2 : 1/0) with points pt 7 ps 0.3 lc rgb '#1f77b4' title 'ok', \\"
		echo "     '$lat' using 1:(strcol(4) eq \"fail\" ? \$2 : 1/0) with points pt 7 ps 0.4 lc rgb '#ff7f0e' title 'fail', \\"
		echo "     '$lat' using 1:(strcol(4) eq \"info\" ? \$2 : 1/0) with points pt 7 ps 0.5 lc rgb '#d62728' title 'info (indeterminate)'"
	} >"$DIR/latency.gp"
	gnuplot "$DIR/latency.gp" 2>"$DIR/gnuplot.err" && [[ -s $DIR/latency.png ]] && exit 0
	rm -f "$DIR/latency.png"
fi
# SVG by hand: x linear in seconds, y log10 of ms from 0.1 ms to 10 s.
awk -v faults="$DIR/faults.rel" '
BEGIN { W = 1400; H = 600; L = 60; R = 20; T = 30; Bm = 40; tmax = 1 }
/^#/ { next }
{ t[n] = $1; l[n] = $2; ty[n] = $4; if ($1 > tmax) tmax = $1; n++ }
function X(s) { return L + (W - L - R) * s / tmax }
function Y(ms) { if (ms < 0.1) ms = 0.1; v = log(ms) / log(10); return T + (H - T - Bm) * (4 - v) / 5 }
END {
	while ((getline line < faults) > 0) { split(line, f, " "); if (f[2] > tmax) tmax = f[2]; fa[nf] = f[1]; fb[nf] = f[2]; fk[nf] = f[3]; nf++ }
	printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"10\">\n", W, H
	printf "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
	for (i = 0; i < nf; i++) {
		printf "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"#ffcccc\" opacity=\"0.6\"/>\n", X(fa[i]), T, X(fb[i]) - X(fa[i]), H - T - Bm
		printf "<text x=\"%.1f\" y=\"%d\" font-size=\"8\">%s</text>\n", X(fa[i]) + 1, T + 10 + (i % 5) * 9, fk[i]
	}
	for (e = -1; e <= 4; e++) printf "<text x=\"5\" y=\"%.1f\">%g ms</text><line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", Y(10^e), 10^e, L, W - R, Y(10^e), Y(10^e)
	for (s = 0; s <= tmax; s += (tmax > 300 ? 60 : 10)) printf "<text x=\"%.1f\" y=\"%d\">%ds</text>\n", X(s), H - 20, s
	for (i = 0; i < n; i++) {
		c = ty[i] == "ok" ? "#1f77b4" : (ty[i] == "fail" ? "#ff7f0e" : "#d62728")
		printf "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"1.2\" fill=\"%s\"/>\n", X(t[i]), Y(l[i]), c
	}
	printf "<text x=\"%d\" y=\"18\" font-size=\"13\">latency by operation: blue ok, orange fail, red indeterminate; fault windows shaded</text>\n</svg>\n", L
}' "$lat" >"$DIR/latency.svg"
