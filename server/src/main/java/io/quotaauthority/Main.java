package io.quotaauthority; public final class Main { public static void main(String[] a) {} }
