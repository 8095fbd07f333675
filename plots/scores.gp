# scores.gp: per-sample score distributions of D_k against the other mini-datasets.
# Set by the generated header: datafile, npanels, nrows, ncols, titles[1..npanels], k, N, m,
# xlabel_text, title_text, xmin, xmax (the 1st to 99th percentile of all panels' scores,
# widened by 2%; the count outside is in each block's comment), xstep (x tic step), column. Block i-1 of datafile
# is panel i; columns: 1 bin centre, 2 density of D_k's m scores, 3 density of the other
# (N-1)m scores (per score unit). One key (first panel), one x label (bottom row).
set multiplot layout nrows,ncols title title_text
set style fill transparent solid 0.45 border
set grid lc rgb "#dddddd"
set key top left samplen 1.5 spacing 1 opaque
set ylabel column ? "density (shape)" : "density"
set xrange [xmin:xmax]
set xtics xstep
if (column) { set format y "" }
set yrange [0:*]
set offsets 0, 0, graph 0.35, 0   # headroom above the bars for the key
# at most about three y tics per panel (1, 2 or 5 times a power of ten), so that they never overlap
nice(d) = (e = 10**floor(log10(d)), d / e <= 1 ? e : d / e <= 2 ? 2 * e : d / e <= 5 ? 5 * e : 10 * e)
do for [i=1:npanels] {
    stats [*:*][*:*] datafile index (i-1) using 2:3 nooutput
    set ytics nice(1.35 * (STATS_max_x > STATS_max_y ? STATS_max_x : STATS_max_y) / 3 + 1e-12)
    set title titles[i]
    if (i > npanels - ncols) { set xlabel xlabel_text } else { unset xlabel }
    if (i > 1) { unset key }
    plot datafile index (i-1) using 1:3 with boxes lc rgb "#3366cc" title sprintf("other %d mini-datasets", N - 1), \
         datafile index (i-1) using 1:2 with boxes lc rgb "#dd3311" title sprintf("D_k (k = %d, m = %d)", k, m)
}
unset multiplot
