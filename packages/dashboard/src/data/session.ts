// The signed-in key, kept in the browser's storage so a reload stays signed
// in; signing out removes it.
const STORAGE_KEY = 'warren.apiKey'

export function savedKey(): string | undefined {
  return localStorage.getItem(STORAGE_KEY) ?? undefined
}

export function saveKey(key: string): void {
  localStorage.setItem(STORAGE_KEY, key)
}

export function forgetKey(): void {
  localStorage.removeItem(STORAGE_KEY)
}
