# fidelity.gp: a dot plot of owner and clean test accuracy per architecture (sweep point),
# one row each: the seeds as small dots, the mean as a large one with its 95% CI over seeds
# (clipped to [0, 1], the range of an accuracy).
# Set by the generated header: datafile, ngroups, labels[1..ngroups], lo, hi (the x range),
# title_text, column. Block i-1 of datafile: one row per seed: 1 clean accuracy, 2 owner
# accuracy, 3-4 the group's mean clean and owner accuracy, 5-6 the clean CI (low, high),
# 7-8 the owner CI (low, high), 9 the group's row (0 = first); rows are drawn top-down.
set title title_text
set xrange [lo:hi]
set yrange [-0.6:ngroups - 0.4]
set ytics scale 0 ()
do for [i=1:ngroups] { set ytics add (labels[i] (ngroups - i)) }
set grid xtics lc rgb "#dddddd"
set xlabel "test accuracy (fraction)"
set key outside top center horizontal samplen 1
y(r, d) = ngroups - 1 - r + d
plot datafile using 1:(y($9, 0.12)) with points pt 6 ps 0.5 lc rgb "#3366cc" notitle, \
     datafile using 2:(y($9, -0.12)) with points pt 6 ps 0.5 lc rgb "#dd3311" notitle, \
     datafile every ::0::0 using 3:(y($9, 0.12)):5:6 with xerrorbars pt 7 ps 1 lw 1.5 lc rgb "#3366cc" title "clean", \
     datafile every ::0::0 using 4:(y($9, -0.12)):7:8 with xerrorbars pt 5 ps 1 lw 1.5 lc rgb "#dd3311" title "owner", \
     NaN with points pt 6 ps 0.5 lc rgb "black" title "one seed"
