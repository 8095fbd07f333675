# scores.gp: per-sample score distributions of D_k against the other mini-datasets.
# Set by the generated header: datafile, npanels, nrows, ncols, titles[1..npanels], k, N, m,
# xlabel_text, title_text. Block i-1 of datafile is panel i; columns: 1 bin centre,
# 2 density of D_k's m scores, 3 density of the other (N-1)m scores (per score unit).
set multiplot layout nrows,ncols title title_text
set style fill transparent solid 0.45 border
set grid lc rgb "#dddddd"
set key top left samplen 2 spacing 1.1
set xlabel xlabel_text
set ylabel "density (per score unit)"
set yrange [0:*]
set offsets 0, 0, graph 0.45, 0   # headroom above the bars for the key
do for [i=1:npanels] {
    set title titles[i]
    plot datafile index (i-1) using 1:3 with boxes lc rgb "#3366cc" title sprintf("other %d mini-datasets (%d samples)", N - 1, (N - 1) * m), \
         datafile index (i-1) using 1:2 with boxes lc rgb "#dd3311" title sprintf("D_k, k = %d (%d samples)", k, m)
}
unset multiplot
