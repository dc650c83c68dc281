import { describe, expect, it } from 'vitest'
import {
  createTable,
  getSortedRowModel,
  type ColumnDef,
  type SortingState,
  type TableOptionsResolved
} from '@tanstack/react-table'
import { reusingCoreRowModel } from './rowModel'

interface Item {
  position: number
  mse: number
}

const columns: ColumnDef<Item>[] = [
  { accessorKey: 'position', header: 'Position' },
  { accessorKey: 'mse', header: 'MSE' }
]

function tableOf(data: Item[], sorting: SortingState = []) {
  const options: TableOptionsResolved<Item> = {
    data,
    columns,
    state: { sorting },
    onStateChange: () => undefined,
    renderFallbackValue: null,
    getCoreRowModel: reusingCoreRowModel(),
    getSortedRowModel: getSortedRowModel()
  }
  const table = createTable(options)
  table.setOptions((prev) => ({ ...prev, state: { ...table.initialState, sorting } }))
  return {
    table,
    setData(next: Item[]): void {
      table.setOptions((prev) => ({ ...prev, data: next }))
    }
  }
}

const item = (position: number, mse: number): Item => ({ position, mse })

describe('reusingCoreRowModel', () => {
  it('keeps the rows of items already shown when more arrive, and makes rows for the new ones', () => {
    const first = [item(0, 3), item(1, 1)]
    const { table, setData } = tableOf(first)
    const before = table.getCoreRowModel().rows
    expect(before.map((r) => [r.id, r.index, r.getValue('mse')])).toEqual([
      ['0', 0, 3],
      ['1', 1, 1]
    ])

    setData([...first, item(2, 2)])
    const after = table.getCoreRowModel().rows
    expect(after).toHaveLength(3)
    expect(after[0]).toBe(before[0])
    expect(after[1]).toBe(before[1])
    expect(after[2]!.getValue('mse')).toBe(2)
    expect(table.getCoreRowModel().rowsById['2']).toBe(after[2])
  })

  it('makes a fresh row when an item is replaced or moves to another index', () => {
    const a = item(0, 1)
    const b = item(1, 2)
    const { table, setData } = tableOf([a, b])
    const [rowA, rowB] = table.getCoreRowModel().rows
    const replaced = item(1, 5)
    setData([a, replaced])
    const rows = table.getCoreRowModel().rows
    expect(rows[0]).toBe(rowA)
    expect(rows[1]).not.toBe(rowB)
    expect(rows[1]!.getValue('mse')).toBe(5)

    // A gap filled in front shifts b: its row must say its new index.
    setData([a, item(1, 9), b])
    const shifted = table.getCoreRowModel().rows
    expect(shifted[2]!.original).toBe(b)
    expect(shifted[2]!.index).toBe(2)
    expect(shifted[2]!.id).toBe('2')
  })

  it('feeds the sorted model like the stock core model', () => {
    const data = [item(0, 3), item(1, 1), item(2, 2)]
    const { table, setData } = tableOf(data, [{ id: 'mse', desc: true }])
    expect(table.getRowModel().rows.map((r) => r.original.position)).toEqual([0, 2, 1])
    setData([...data, item(3, 10)])
    expect(table.getRowModel().rows.map((r) => r.original.position)).toEqual([3, 0, 2, 1])
  })
})
