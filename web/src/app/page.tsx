"use client";
import { RequireAuth } from "@/lib/auth";

export default function DashboardPage() {
  return (
    <RequireAuth>
      <h1>Dashboard</h1>
    </RequireAuth>
  );
}
