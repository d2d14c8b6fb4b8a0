/**
 * A chart.js bar chart of amounts over days, with the same numbers as a table for screen readers and for
 * anyone who wants exact figures. Amounts come in as base units (bigint); the chart's axis is the one place
 * they become plain numbers, for drawing only: every figure shown as text is formatted from the bigint.
 */
import { useEffect, useId, useRef } from "react";
import { BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, Tooltip } from "chart.js";
import { formatUnits } from "viem";
import { formatAmount, type TokenInfo } from "../lib/amounts";

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip);

export interface StackedSeries {
  /** e.g. a model name, a key, a tag. */
  name: string;
  /** One value per label, base units (or plain counts when `token` is not given). */
  values: bigint[];
}

const PALETTE = ["#1f5f8b", "#c2571a", "#2e7d32", "#7b3fa0", "#b0862d", "#00838f", "#ad1457", "#546e7a"];

export function StackedBarChart({ title, labels, series, token }: { title: string; labels: string[]; series: StackedSeries[]; token?: TokenInfo }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const id = useId();
  const format = (value: bigint) => (token ? formatAmount(value, token) : value.toLocaleString());
  useEffect(() => {
    if (!canvas.current) return;
    const toNumber = (value: bigint) => (token ? Number(formatUnits(value, token.decimals)) : Number(value));
    const chart = new Chart(canvas.current, {
      type: "bar",
      data: {
        labels,
        datasets: series.map((entry, index) => ({
          label: entry.name,
          data: entry.values.map(toNumber),
          backgroundColor: PALETTE[index % PALETTE.length],
        })),
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, title: { display: Boolean(token), text: token?.symbol ?? "" } } },
        plugins: {
          legend: { position: "bottom" },
          tooltip: {
            callbacks: {
              // The tooltip shows the exact bigint, not the float the bar was drawn from.
              label: (item) => `${item.dataset.label}: ${format(series[item.datasetIndex].values[item.dataIndex])}`,
            },
          },
        },
      },
    });
    return () => chart.destroy();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [labels, series, token]);
  return (
    <figure className="chart">
      <figcaption id={id}>{title}</figcaption>
      <div className="chart-box">
        <canvas ref={canvas} role="img" aria-labelledby={id} aria-describedby={`${id}-table`} />
      </div>
      <details>
        <summary>Show the figures as a table</summary>
        <div className="table-scroll" tabIndex={0} role="region" aria-label={`${title}: figures`}>
          <table id={`${id}-table`}>
            <thead>
              <tr>
                <th scope="col">Day</th>
                {series.map((entry) => (
                  <th key={entry.name} scope="col" className="num">
                    {entry.name}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {labels.map((label, row) => (
                <tr key={label}>
                  <th scope="row">{label}</th>
                  {series.map((entry) => (
                    <td key={entry.name} className="num">
                      {format(entry.values[row])}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </details>
    </figure>
  );
}
