# ablation.gp: heatmaps over the pool's N (mini-datasets) x m (samples per mini-dataset) of the
# un-attacked owners: the fraction claimed at the first alpha, and the median -log10 p; one row
# of two panels per score kind and value of the other sweep axes ("diff, pool.repeat=2").
# Set by the generated header: datafile, nkinds, kinds[1..nkinds], nN, nm, Nlabels[1..nN],
# mlabels[1..nm], alpha, lptop (the largest median), lp_text, title_text, column.
# Block i-1 of datafile (panel kinds[i]): rows 1 N index, 2 m index, 3 N, 4 m, 5 claimed rate,
# 6 median -log10 p, 7 owners in the cell (a cell with none is NaN).
set multiplot layout nkinds,2 title title_text
set xrange [-0.5:nN - 0.5]
set yrange [-0.5:nm - 0.5]
set xtics scale 0 ()
do for [i=1:nN] { set xtics add (Nlabels[i] (i - 1)) }
set ytics scale 0 ()
do for [i=1:nm] { set ytics add (mlabels[i] (i - 1)) }
set xlabel "N (mini-datasets)"
set ylabel "m (samples each)"
set palette defined (0 "#f7fbff", 0.5 "#6baed6", 1 "#08306b")
set colorbox
unset key
txt(v) = (v != v) ? "n/a" : sprintf("%.2g", v)
ink(v, top) = (v == v && v > 0.6 * top) ? 0xffffff : 0x000000
do for [k=1:nkinds] {
    set title sprintf("%s: claimed at %g", kinds[k], alpha)
    set cbrange [0:1]
    plot datafile index (k-1) using 1:2:5 with image, \
         datafile index (k-1) using 1:2:(txt($5)):(ink($5, 1)) with labels tc rgb variable
    set title sprintf("%s: %s", kinds[k], lp_text)
    set cbrange [0:lptop]
    plot datafile index (k-1) using 1:2:6 with image, \
         datafile index (k-1) using 1:2:(txt($6)):(ink($6, lptop)) with labels tc rgb variable
}
unset multiplot
