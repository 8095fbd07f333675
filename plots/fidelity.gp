# fidelity.gp: a dot plot of owner and clean test accuracy per architecture (sweep point),
# one row each: the seeds as small dots, the centre as a large one with its spread over seeds
# (with few seeds the median and the seeds' range, else the mean and its 95% t-CI; within
# [0, 1], the range of an accuracy).
# Set by the generated header: datafile, ngroups, labels[1..ngroups], lo, hi (the x range),
# title_text and spread_text (how the centre and spread were computed: the title's second
# line), column. Block i-1 of
# datafile: one row per seed: 1 clean accuracy, 2 owner accuracy, 3-4 the group's centre of
# the clean and owner accuracy, 5-6 the clean spread (low, high), 7-8 the owner spread (low,
# high), 9 the group's row (0 = first); rows are drawn top-down.
set multiplot title sprintf("%s\n(%s)", title_text, spread_text)
set xrange [lo:hi]
# about five x tics (three in a column) (1, 2 or 5 times a power of ten), so that the labels never run together
nice(d) = (e = 10**floor(log10(d)), d / e <= 1 ? e : d / e <= 2 ? 2 * e : d / e <= 5 ? 5 * e : 10 * e)
set xtics nice((hi - lo) / (column ? 3 : 5) + 1e-12)
set tmargin 4   # room for the two-line title
set yrange [-0.6:ngroups - 0.4]
set ytics scale 0 ()
do for [i=1:ngroups] { set ytics add (labels[i] (ngroups - i)) }
set grid xtics lc rgb "#dddddd"
set xlabel "test accuracy (fraction)"
set key outside bottom center horizontal samplen 1
y(r, d) = ngroups - 1 - r + d
plot datafile using 1:(y($9, 0.12)) with points pt 6 ps 0.5 lc rgb "#3366cc" notitle, \
     datafile using 2:(y($9, -0.12)) with points pt 6 ps 0.5 lc rgb "#dd3311" notitle, \
     datafile every ::0::0 using 3:(y($9, 0.12)):5:6 with xerrorbars pt 7 ps 1 lw 1.5 lc rgb "#3366cc" title "clean", \
     datafile every ::0::0 using 4:(y($9, -0.12)):7:8 with xerrorbars pt 5 ps 1 lw 1.5 lc rgb "#dd3311" title "owner", \
     NaN with points pt 6 ps 0.5 lc rgb "black" title "one seed"
unset multiplot
